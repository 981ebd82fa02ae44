package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pc1-tiered/pc1-tiered/measure"
)

// Progress draws one live line per sector (layer, percent, nodes/s) on a
// terminal and stays silent otherwise, so that piped output is only the
// report.
type Progress struct {
	w        io.Writer
	terminal bool
	layers   int
	nodes    uint64

	mu      sync.Mutex
	sectors []sectorProgress
	drawn   int // lines drawn last time, to move back over them
	stop    chan struct{}
	wg      sync.WaitGroup
}

type sectorProgress struct {
	layer    int
	done     uint64 // nodes done in layer
	total    uint64 // nodes done in all layers
	lastSeen uint64 // total at the previous redraw
	rate     float64
}

// NewProgress returns a progress display for sectors sectors of the given
// layers and nodes per layer.
func NewProgress(w io.Writer, isTerminal bool, sectors, layers int, nodes uint64) *Progress {
	return &Progress{w: w, terminal: isTerminal, layers: layers, nodes: nodes, sectors: make([]sectorProgress, sectors)}
}

// Update records that sector has labeled nodesDone nodes of layer. It is
// safe for concurrent use and cheap.
func (p *Progress) Update(sector, layer int, nodesDone uint64) {
	p.mu.Lock()
	s := &p.sectors[sector]
	s.layer, s.done = layer, nodesDone
	s.total = uint64(layer-1)*p.nodes + nodesDone
	p.mu.Unlock()
}

// Start redraws every half second until Stop, on a terminal only.
func (p *Progress) Start() {
	if !p.terminal {
		return
	}
	p.stop = make(chan struct{})
	p.wg.Go(func() {
		const every = 500 * time.Millisecond
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(every)
			case <-p.stop:
				return
			}
		}
	})
}

// Stop ends the redraws and, on a terminal, draws the final state.
func (p *Progress) Stop() {
	if !p.terminal {
		return
	}
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
		p.stop = nil
	}
	p.draw(0)
}

func (p *Progress) draw(interval time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for i := range p.sectors {
		s := &p.sectors[i]
		if interval > 0 {
			s.rate = float64(s.total-s.lastSeen) / interval.Seconds()
		}
		s.lastSeen = s.total
		pct := 0.0
		if p.nodes > 0 {
			pct = 100 * float64(s.done) / float64(p.nodes)
		}
		state := fmt.Sprintf("layer %d/%d  %5.1f%%  %s nodes/s", s.layer, p.layers, pct, measure.HumanRate(s.rate))
		if s.layer == 0 {
			state = "waiting"
		}
		fmt.Fprintf(&b, "\x1b[2Ksector %d  %s\n", i, state)
	}
	p.drawn = len(p.sectors)
	io.WriteString(p.w, b.String())
}
