package dashboard

import (
	"encoding/gob"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

func init() {
	// Kept in the session as an interface value (scs encodes with gob).
	gob.Register(sealedReveal{})
}

// chart is a usage report drawn as stacked bars, accepted below refused,
// one per bucket, on the server: the page embeds it as SVG, with no
// script and no library.
type chart struct {
	Width, Height int
	// Top is the count of the top of the scale.
	Top   int64
	Bars  []bar
	Ticks []tick
	Total keyward.UsageTotals
	Unit  string
}

// bar is one bucket's bar: the heights and tops of its two parts.
type bar struct {
	X, W                     float64
	AllowedY, AllowedH       float64
	RefusedY, RefusedH       float64
	Label                    string
	Allowed, Refused, Bucket int64
}

// tick is a label under the bars.
type tick struct {
	X     float64
	Label string
}

// Chart geometry, in SVG units.
const (
	chartW, chartH = 720, 180
	chartLeft      = 40
	chartBottom    = 20
)

// newChart draws report.
func newChart(rep *keyward.UsageReport) *chart {
	c := &chart{Width: chartW, Height: chartH, Total: rep.Total, Unit: string(rep.Granularity)}
	for _, b := range rep.Buckets {
		c.Top = max(c.Top, b.Requests)
	}
	c.Top = niceTop(c.Top)
	n := len(rep.Buckets)
	if n == 0 {
		return c
	}
	plotW := float64(chartW - chartLeft)
	plotH := float64(chartH - chartBottom)
	step := plotW / float64(n)
	every := max(1, n/6)
	for i, b := range rep.Buckets {
		x := float64(chartLeft) + float64(i)*step
		ah := plotH * float64(b.Allowed) / float64(c.Top)
		rh := plotH * float64(b.Refused) / float64(c.Top)
		label := bucketLabel(b.Start, rep.Granularity)
		c.Bars = append(c.Bars, bar{X: x + 1, W: max(step-2, 1), AllowedY: plotH - ah, AllowedH: ah, RefusedY: plotH - ah - rh, RefusedH: rh,
			Label: label, Allowed: b.Allowed, Refused: b.Refused, Bucket: b.Requests})
		if i%every == 0 {
			c.Ticks = append(c.Ticks, tick{X: x, Label: label})
		}
	}
	return c
}

// niceTop rounds a maximum up to 1, 2 or 5 times a power of ten, at least
// 1, for the scale.
func niceTop(n int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if n <= m*p {
				return m * p
			}
		}
	}
}

func bucketLabel(t time.Time, g keyward.Granularity) string {
	if g == keyward.Daily {
		return t.UTC().Format("Jan 2")
	}
	return t.UTC().Format("15:04")
}

// half is the middle of the scale, for its label.
func (c *chart) Half() string { return fmt.Sprint(c.Top / 2) }
