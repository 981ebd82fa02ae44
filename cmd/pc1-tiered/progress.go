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
// report. A parent cache generated first (ParentCache) gets a line when
// it starts and one when it ends, terminal or not, and on a terminal a
// live line above the sectors'.
type Progress struct {
	w        io.Writer
	terminal bool
	layers   int
	nodes    uint64
	now      func() time.Time // time.Now; tests set a fake clock

	mu      sync.Mutex
	sectors []sectorProgress
	cache   cacheProgress
	drawn   int // lines drawn last time, to move back over them
	stop    chan struct{}
	wg      sync.WaitGroup
}

// cacheProgress is a parent cache generation being shown.
type cacheProgress struct {
	active      bool
	done, total uint64
	start       time.Time
	drawn       time.Time // when its live line was last drawn
}

// cacheDrawEvery is how often the parent cache's live line is redrawn at
// most: often enough to look alive, rarely enough to cost nothing.
const cacheDrawEvery = 250 * time.Millisecond

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
	return &Progress{w: w, terminal: isTerminal, layers: layers, nodes: nodes, now: time.Now, sectors: make([]sectorProgress, sectors)}
}

// ParentCache returns the callback that shows the generation of the
// parent cache for name (the proof, or the graph) at path, for
// blockio.ParentCacheOptions.OnGenerate and sealer's OnParentCache: a line
// when it starts, on a terminal a live line (percent, nodes/s and the
// time left at the average rate so far) redrawn at most every
// cacheDrawEvery, and a line with the elapsed time when it ends. In a
// pipe or a log only those two lines: a redrawn line is garbage there,
// and the start line already says what the wait is for.
func (p *Progress) ParentCache(name, path string) func(done, total uint64) {
	return func(done, total uint64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		c := &p.cache
		now := p.now()
		switch {
		case !c.active && done < total:
			*c = cacheProgress{active: true, done: done, total: total, start: now}
			p.noteLocked(fmt.Sprintf("pc1-tiered: generating the parent cache for %s at %s (%d nodes)", name, path, total))
		case !c.active:
			// total without a start: nothing was shown, nothing to end.
		case done < total:
			c.done = done
			if p.terminal && now.Sub(c.drawn) >= cacheDrawEvery {
				p.drawLocked("", 0)
			}
		default:
			c.active = false
			elapsed := now.Sub(c.start)
			line := fmt.Sprintf("pc1-tiered: generated the parent cache in %s", humanDuration(elapsed))
			if elapsed > 0 {
				line += fmt.Sprintf(" (%s nodes/s)", measure.HumanRate(float64(total)/elapsed.Seconds()))
			}
			p.noteLocked(line)
		}
	}
}

// line is the parent cache's live line.
func (c *cacheProgress) line(now time.Time) string {
	pct := 100 * float64(c.done) / float64(c.total)
	elapsed := now.Sub(c.start)
	if c.done == 0 || elapsed <= 0 {
		return fmt.Sprintf("parent cache  %5.1f%%  estimating the time left", pct)
	}
	rate := float64(c.done) / elapsed.Seconds()
	left := time.Duration(float64(c.total-c.done) / rate * float64(time.Second))
	return fmt.Sprintf("parent cache  %5.1f%%  %s nodes/s  %s left", pct, measure.HumanRate(rate), humanDuration(left))
}

// humanDuration rounds d to what a person reads: milliseconds under a
// second, seconds above.
func humanDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
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
	p.drawLocked("", interval)
}

// noteLocked prints line for good: in a pipe as it is, on a terminal
// above the live lines, which it redraws below it.
func (p *Progress) noteLocked(line string) {
	if !p.terminal {
		fmt.Fprintln(p.w, line)
		return
	}
	p.drawLocked(line, 0)
}

// drawLocked redraws the live lines over the previous ones, after note
// when it is not empty. interval is the time since the last timed redraw,
// over which the sectors' rates are taken; 0 keeps their rates.
func (p *Progress) drawLocked(note string, interval time.Duration) {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	if note != "" {
		fmt.Fprintf(&b, "\x1b[2K%s\n", note)
	}
	lines := 0
	if p.cache.active {
		now := p.now()
		fmt.Fprintf(&b, "\x1b[2K%s\n", p.cache.line(now))
		p.cache.drawn = now
		lines++
	}
	for i := range p.sectors {
		s := &p.sectors[i]
		if interval > 0 {
			// Only timed redraws move lastSeen, so that the redraws in
			// between (notes, the parent cache's line) leave the rate
			// taken over the whole interval.
			s.rate = float64(s.total-s.lastSeen) / interval.Seconds()
			s.lastSeen = s.total
		}
		pct := 0.0
		if p.nodes > 0 {
			pct = 100 * float64(s.done) / float64(p.nodes)
		}
		state := fmt.Sprintf("layer %d/%d  %5.1f%%  %s nodes/s", s.layer, p.layers, pct, measure.HumanRate(s.rate))
		if s.layer == 0 {
			state = "waiting"
		}
		fmt.Fprintf(&b, "\x1b[2Ksector %d  %s\n", i, state)
		lines++
	}
	p.drawn = lines
	io.WriteString(p.w, b.String())
}
