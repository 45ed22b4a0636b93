package broker

import (
	"bufio"
	"errors"
	"io"
	"sync"
)

// errLineTooLong is returned by lineReader.next for a line over the limit.
var errLineTooLong = errors.New("line too long")

// lineReader splits a stream into lines without allocating per line. A line
// that fits the read buffer is returned in place; a longer one is gathered in
// a buffer that is reused and never grows past the limit.
type lineReader struct {
	r   *bufio.Reader
	max int    // longest line accepted, not counting "\n" or "\r\n"
	buf []byte // gathers lines longer than r's buffer

	// spare holds a line buffer over keepBuffer between lines: the next big
	// line reuses it, and the GC reclaims it once the session goes quiet.
	spare sync.Pool

	// Set when next returns errLineTooLong, for copyRest.
	rest    []byte // bytes of the line read from r but not returned
	restErr error  // how the line ended when it is complete: nil ("\n") or a read error
	partial bool   // the end of the line has not been read yet
}

func (b *Broker) newLineReader(src io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(src, b.bufSize), max: b.maxMessage}
}

// next returns the next line and its "\n". The line is valid until the next
// call. The error is:
//   - nil for a complete line;
//   - io.EOF at the end of the stream, with the last line if it has no "\n";
//   - errLineTooLong for a line over the limit: the returned bytes are its
//     start, and copyRest can stream the remainder;
//   - any other read error, with the part of the line read before it.
func (lr *lineReader) next() ([]byte, error) {
	if cap(lr.buf) > keepBuffer {
		buf := lr.buf[:0]
		lr.spare.Put(&buf)
		lr.buf = nil
	}
	lr.rest, lr.restErr, lr.partial = nil, nil, false
	line, err := lr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return lr.gather(line)
	}
	if contentLen(line) > lr.max {
		lr.restErr = err
		return line, errLineTooLong
	}
	return line, err
}

// gather collects a line that does not fit the read buffer, starting with
// first. It stops as soon as the line cannot be within the limit, so it never
// holds more than the limit plus "\r\n".
func (lr *lineReader) gather(first []byte) ([]byte, error) {
	lr.buf = lr.buf[:0]
	chunk, err := first, bufio.ErrBufferFull
	for {
		if len(lr.buf)+len(chunk) > lr.max+2 {
			lr.rest = chunk
			lr.partial = err == bufio.ErrBufferFull
			if !lr.partial {
				lr.restErr = err
			}
			return lr.buf, errLineTooLong
		}
		lr.grow(len(chunk))
		lr.buf = append(lr.buf, chunk...)
		if err != bufio.ErrBufferFull {
			break
		}
		chunk, err = lr.r.ReadSlice('\n')
	}
	if contentLen(lr.buf) > lr.max {
		lr.restErr = err
		return lr.buf, errLineTooLong
	}
	return lr.buf, err
}

// grow makes room for n more bytes in buf. It doubles, but jumps straight to
// the largest line gather can hold once doubling would pass half of it: the
// steps before the last then add up to at most that size, so one line never
// costs more than twice the limit in allocations.
func (lr *lineReader) grow(n int) {
	need := len(lr.buf) + n
	if need <= cap(lr.buf) {
		return
	}
	if spare, _ := lr.spare.Get().(*[]byte); spare != nil && cap(*spare) >= need {
		lr.buf = append(*spare, lr.buf...)
		return
	}
	largest := lr.max + 2
	c := max(2*cap(lr.buf), 2*lr.r.Size(), need)
	if c > largest/2 {
		c = max(largest, need)
	}
	buf := make([]byte, len(lr.buf), c)
	copy(buf, lr.buf)
	lr.buf = buf
}

// copyRest writes an over-long line to w: its start as returned by next, the
// bytes already read, then the remainder chunk by chunk as it arrives. It
// returns how the line ended (nil after "\n", or the read error) or the
// write error.
func (lr *lineReader) copyRest(w io.Writer, start []byte) (readErr, writeErr error) {
	if err := write(w, start); err != nil {
		return nil, err
	}
	if err := write(w, lr.rest); err != nil {
		return nil, err
	}
	if !lr.partial {
		return lr.restErr, nil
	}
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if werr := write(w, chunk); werr != nil {
			return nil, werr
		}
		if err != bufio.ErrBufferFull {
			return err, nil
		}
	}
}

// terminate returns a copy of p followed by "\n". p may be part of the line
// next returned.
func (lr *lineReader) terminate(p []byte) []byte {
	lr.buf = append(lr.buf[:0], p...)
	lr.buf = append(lr.buf, '\n')
	return lr.buf
}

// contentLen is the length of line without its "\n" or "\r\n".
func contentLen(line []byte) int {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return n
}
