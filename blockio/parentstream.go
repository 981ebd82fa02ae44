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
// once, in node order: Rewind starts the next pass.
type ParentStream struct {
	f          *os.File
	path       string
	nodes      uint64
	chunkNodes uint64

	// free holds buffers the reader may fill, ready the filled ones in node
	// order; held is the buffer the caller was last given.
	free  chan []uint32
	ready chan parentChunk
	stop  chan struct{}
	done  chan struct{}
	held  []uint32
}

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
		ready:      make(chan parentChunk, depth),
	}
	for range depth + 1 {
		s.free <- make([]uint32, chunkNodes*sdr.Degree)
	}
	s.start()
	return s, nil
}

func (s *ParentStream) start() {
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.readLoop(s.stop, s.done)
}

// readLoop fills free buffers with consecutive chunks until the end of the
// file or stop.
func (s *ParentStream) readLoop(stop, done chan struct{}) {
	defer close(done)
	for first := uint64(0); first < s.nodes; first += s.chunkNodes {
		var buf []uint32
		select {
		case buf = <-s.free:
		case <-stop:
			return
		}
		n := min(s.chunkNodes, s.nodes-first)
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
		case s.ready <- parentChunk{first: first, parents: buf, err: err}:
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
	c, ok := <-s.ready
	if !ok {
		return 0, nil, io.EOF
	}
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

// endOfPass makes the Next after the last chunk return io.EOF.
func (s *ParentStream) endOfPass() {
	<-s.done
	close(s.ready)
}

func (s *ParentStream) giveBack() {
	if s.held != nil {
		s.free <- s.held[:cap(s.held)]
		s.held = nil
	}
}

// Rewind starts a new pass from node 0.
func (s *ParentStream) Rewind() error {
	if s.f == nil {
		return errors.New("parent stream: rewind after close")
	}
	s.halt()
	s.ready = make(chan parentChunk, cap(s.ready))
	s.start()
	return nil
}

// halt stops the reader and collects every buffer back into free.
func (s *ParentStream) halt() {
	s.giveBack()
	close(s.stop)
	<-s.done
	for {
		select {
		case c, ok := <-s.ready:
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
	s.halt()
	err := s.f.Close()
	s.f = nil
	return err
}

// hostLittleEndian reports whether the host stores u32s as the cache does,
// in which case the file's bytes are the decoded parents.
func hostLittleEndian() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}
