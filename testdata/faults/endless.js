// Writes one line that never ends.
const chunk = Buffer.alloc(1 << 20, 0x78);
process.stdout.write('{"junk":"');
const pump = () => {
  while (process.stdout.write(chunk));
  process.stdout.once("drain", pump);
};
pump();
