package blockio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// ParentStream reads a parent cache front to back for one job, decoded to
// u32s, with a background goroutine reading a few chunks ahead so that the
// hashing loop never waits for the disk. Each layer reads the whole cache
// once, in node order: Rewind starts the next pass. Once a pass has handed
// out its last chunk the next one starts reading, so that a layer's first
// chunks are ready when it starts (a layer began with a wait of 1-6 ms for
// them, 3% of the README's 8 MiB seal).
type ParentStream struct {
	f          *os.File
	path       string
	nodes      uint64
	chunkNodes uint64

	// free holds buffers the readers may fill; held is the buffer the
	// caller was last given.
	free chan []uint32
	held []uint32
	// cur is the pass Next reads from; next, when not nil, the pass read
	// ahead after cur ended. consumed says whether cur handed out a chunk.
	cur, next *streamPass
	consumed  bool
}

// streamPass is one front-to-back read: its reader sends the filled
// buffers on ready in node order. ramp is set on the first pass, whose
// buffers are fresh (readLoop).
type streamPass struct {
	ready chan parentChunk
	stop  chan struct{}
	done  chan struct{}
	ramp  bool
}

// rampFirstNodes is the first chunk of the first pass: 56 KiB.
const rampFirstNodes = 1 << 10

type parentChunk struct {
	first   uint64
	parents []uint32
	err     error
}

// OpenParentStream opens the parent cache at path for a graph of nodes
// nodes. Next returns chunkNodes nodes at a time; depth chunks are read
// ahead.
func OpenParentStream(path string, nodes uint64, chunkNodes, depth int) (*ParentStream, error) {
	if chunkNodes < 1 || depth < 1 {
		return nil, fmt.Errorf("parent stream %s: chunk of %d nodes, depth %d", path, chunkNodes, depth)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("parent cache: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("parent cache %s: %w", path, err)
	}
	if want := int64(nodes * sdr.ParentCacheBytesPerNode); st.Size() != want {
		f.Close()
		return nil, fmt.Errorf("parent cache %s is %d bytes, want %d for %d nodes", path, st.Size(), want, nodes)
	}
	s := &ParentStream{
		f:          f,
		path:       path,
		nodes:      nodes,
		chunkNodes: uint64(chunkNodes),
		free:       make(chan []uint32, depth+1),
	}
	for range depth + 1 {
		s.free <- make([]uint32, chunkNodes*sdr.Degree)
	}
	s.cur = s.startPass(true)
	return s, nil
}

// startPass starts a pass reading depth chunks ahead: every buffer but the
// one the caller holds.
func (s *ParentStream) startPass(ramp bool) *streamPass {
	depth := cap(s.free) - 1
	p := &streamPass{ready: make(chan parentChunk, depth), stop: make(chan struct{}), done: make(chan struct{}), ramp: ramp}
	go s.readLoop(p)
	return p
}

// readLoop fills free buffers with consecutive chunks until the end of the
// file or stop.
func (s *ParentStream) readLoop(p *streamPass) {
	stop, done := p.stop, p.done
	defer close(done)
	// The first pass ramps its chunks up from rampFirstNodes, 4x a chunk:
	// its buffers are fresh memory, whose first touch costs a page fault
	// every 4 KiB (5-7 ms for a 1.75 MiB chunk on the development VM, a
	// wait at the start of the seal); a short first chunk is ready at
	// once, and each next one is read while the one before is hashed.
	for first, n := uint64(0), uint64(0); first < s.nodes; first += n {
		var buf []uint32
		select {
		case buf = <-s.free:
		case <-stop:
			return
		}
		n = min(s.chunkNodes, s.nodes-first)
		if p.ramp {
			n = min(n, max(rampFirstNodes, 4*first))
		}
		buf = buf[:n*sdr.Degree]
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*4)
		_, err := s.f.ReadAt(raw, int64(first*sdr.ParentCacheBytesPerNode))
		if err != nil {
			err = fmt.Errorf("parent cache %s at node %d: %w", s.path, first, err)
		} else if !hostLittleEndian() {
			for i := range buf {
				buf[i] = binary.LittleEndian.Uint32(raw[4*i:])
			}
		}
		select {
		case p.ready <- parentChunk{first: first, parents: buf, err: err}:
		case <-stop:
			s.free <- buf
			return
		}
		if err != nil {
			return
		}
	}
}

// Next returns the parents of the next chunk of nodes, Degree entries per
// node starting at node first, or io.EOF after the last node. The slice is
// valid until the following call to Next, Rewind or Close.
func (s *ParentStream) Next() (first uint64, parents []uint32, err error) {
	s.giveBack()
	c, ok := <-s.cur.ready
	if !ok {
		return 0, nil, io.EOF
	}
	s.consumed = true
	if c.err != nil {
		s.free <- c.parents[:cap(c.parents)]
		s.endOfPass()
		return 0, nil, c.err
	}
	if c.first+uint64(len(c.parents))/sdr.Degree == s.nodes {
		// Last chunk: nothing more will come before a Rewind.
		defer s.endOfPass()
	}
	s.held = c.parents
	return c.first, c.parents, nil
}

// endOfPass makes the Next after the last chunk return io.EOF, and
// starts reading the next pass.
func (s *ParentStream) endOfPass() {
	<-s.cur.done
	close(s.cur.ready)
	if s.next == nil {
		s.next = s.startPass(false)
	}
}

func (s *ParentStream) giveBack() {
	if s.held != nil {
		s.free <- s.held[:cap(s.held)]
		s.held = nil
	}
}

// Rewind starts a new pass from node 0: the one read ahead if the last
// pass ended, the current one if it has not handed out a chunk yet.
func (s *ParentStream) Rewind() error {
	if s.f == nil {
		return errors.New("parent stream: rewind after close")
	}
	s.giveBack()
	if !s.consumed {
		return nil
	}
	s.halt(s.cur)
	s.cur, s.next = s.next, nil
	if s.cur == nil {
		s.cur = s.startPass(false)
	}
	s.consumed = false
	return nil
}

// halt stops p's reader and collects its buffers back into free. Each
// pass is halted once: Rewind replaces the pass it halts, Close ends the
// stream.
func (s *ParentStream) halt(p *streamPass) {
	s.giveBack()
	close(p.stop)
	<-p.done
	for {
		select {
		case c, ok := <-p.ready:
			if !ok {
				return
			}
			s.free <- c.parents[:cap(c.parents)]
		default:
			return
		}
	}
}

// Close stops the read-ahead and closes the file.
func (s *ParentStream) Close() error {
	if s.f == nil {
		return nil
	}
	s.halt(s.cur)
	if s.next != nil {
		s.halt(s.next)
		s.next = nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// hostLittleEndian reports whether the host stores u32s as the cache does,
// in which case the file's bytes are the decoded parents.
func hostLittleEndian() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}
