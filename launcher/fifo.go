package launcher

import (
	"os"
	"sync"
	"syscall"
)

// fifoReader is the reading end of a FIFO whose writer is inside the
// sandbox. Opening a FIFO for reading blocks until a writer opens it, so the
// open runs in the background; Read waits for it, and Opened tells when the
// sandbox has its end open.
type fifoReader struct {
	path   string
	opened chan struct{}
	f      *os.File
	err    error
	once   sync.Once
}

func openFifoReader(path string) *fifoReader {
	r := &fifoReader{path: path, opened: make(chan struct{})}
	go func() {
		r.f, r.err = os.OpenFile(path, os.O_RDONLY, 0)
		close(r.opened)
	}()
	return r
}

// Opened is closed once the open has returned.
func (r *fifoReader) Opened() <-chan struct{} { return r.opened }

func (r *fifoReader) Read(p []byte) (int, error) {
	<-r.opened
	if r.err != nil {
		return 0, r.err
	}
	return r.f.Read(p)
}

// Close ends the FIFO. If the sandbox never opened its end, a writer that
// opens and closes at once releases the pending open, whose reads then see
// EOF.
func (r *fifoReader) Close() error {
	r.once.Do(func() {
		select {
		case <-r.opened:
		default:
			if w, err := os.OpenFile(r.path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			<-r.opened
		}
	})
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}
