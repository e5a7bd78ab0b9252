package web

import (
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
)

func TestCharts(t *testing.T) {
	c := newChart("x", map[string]int{"a": 10, "b": 5, "c": 0}, nil)
	if c.Total != 15 || len(c.Bars) != 3 || c.Bars[0].Label != "a" || c.Bars[0].Width != barWidth || c.Bars[1].Width != barWidth/2 || c.Bars[2].Width != 0 {
		t.Fatalf("bars = %+v, want a full, b half, c none", c.Bars)
	}
	now := time.Date(2026, 12, 4, 12, 30, 0, 0, time.UTC)
	entries := []client.ActivityEntry{{Time: now}, {Time: now.Add(-time.Minute)}, {Time: now.Add(-time.Minute)}, {Time: now.Add(-5 * time.Minute)}}
	pts, unit := activityPoints(entries)
	tc := newTimeChart("Recent events", pts, unit)
	if tc.Title != "Recent events per minute" || len(tc.Columns) != 6 {
		t.Fatalf("got %q with %d columns, want per minute with 6", tc.Title, len(tc.Columns))
	}
	if tc.Columns[0].Value != 1 || tc.Columns[4].Value != 2 || tc.Columns[5].Value != 1 || tc.Columns[4].Height != columnHeight-4 {
		t.Errorf("columns = %+v", tc.Columns)
	}
	long := []client.ActivityEntry{{Time: now}, {Time: now.Add(-100 * time.Hour)}}
	pts, unit = activityPoints(long)
	if tc := newTimeChart("Recent events", pts, unit); tc.Title != "Recent events per hour" || len(tc.Columns) != maxColumns {
		t.Errorf("a long window: %q with %d columns, want per hour, %d", tc.Title, len(tc.Columns), maxColumns)
	}
}
