package audit

import (
	"context"
	"io"
	"slices"
	"time"
)

// Output says how Print prints.
type Output struct {
	JSON   bool // the raw lines, unchanged
	Color  bool // ANSI colors in readable lines
	Last   int  // only the last Last records; < 0 for all
	Follow bool // then keep printing new records until ctx is done
}

// PollInterval is how often Print looks for new records when following.
const PollInterval = 250 * time.Millisecond

// Print prints the records of dir that q selects to w, as o says. An
// unknown q.Server is a *ServerError that names the servers with logs.
func Print(ctx context.Context, w io.Writer, dir string, q Query, o Output, warn func(error)) error {
	if q.Server != "" {
		if err := checkServerName(q.Server); err != nil {
			return err
		}
		servers, err := Servers(dir)
		if err != nil {
			return err
		}
		if !slices.Contains(servers, q.Server) {
			return &ServerError{Server: q.Server, Dir: dir, Servers: servers}
		}
	}
	t, err := newTail(dir, q, warn)
	if err != nil {
		return err
	}
	recs, err := t.start(!o.Follow)
	if err != nil {
		return err
	}
	recs = filter(recs, q)
	if o.Last >= 0 && len(recs) > o.Last {
		recs = recs[len(recs)-o.Last:]
	}
	p := &printer{w: w, o: o, f: Format{Color: o.Color, Date: SpansDays(recs)}}
	for _, r := range recs {
		if err := p.print(r); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		recs, err := t.poll()
		if err != nil {
			return err
		}
		for _, r := range filter(recs, q) {
			if err := p.print(r); err != nil {
				return err
			}
		}
	}
}

type printer struct {
	w     io.Writer
	o     Output
	f     Format
	first time.Time // date of the first record printed
}

func (p *printer) print(r Record) error {
	if p.o.JSON {
		_, err := p.w.Write(append(slices.Clip(r.Raw), '\n'))
		return err
	}
	if p.first.IsZero() {
		p.first = r.Time
	} else if !p.f.Date && !sameDay(p.first, r.Time) {
		p.f.Date = true // a follow that crossed midnight
	}
	return p.f.Fprint(p.w, r)
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Local().Date()
	by, bm, bd := b.Local().Date()
	return ay == by && am == bm && ad == bd
}

// SpansDays reports whether recs fall on more than one (local) date,
// when readable lines should show the full date.
func SpansDays(recs []Record) bool {
	for _, r := range recs {
		if !sameDay(recs[0].Time, r.Time) {
			return true
		}
	}
	return false
}
