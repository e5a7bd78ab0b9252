//go:build fault

package faults_test

import (
	"testing"
	"time"
)

// TestLoad_Outages: each fault gets the longest stretch without an answer
// from the last answer before it to the next fault, and a stretch that
// holds the next fault counts for that one only.
func TestLoad_Outages(t *testing.T) {
	s := func(d float64) int64 { return int64(d * float64(time.Second)) }
	l := &load{t: t}
	// Answers every 0.1 s from 0 to 30 s, but for two gaps: 10.0-12.0 (the
	// first fault at 10.05) and 19.9-23.0 (the second fault at 20.0).
	for tenth := 0; tenth <= 300; tenth++ {
		if (tenth > 100 && tenth < 120) || (tenth > 199 && tenth < 230) {
			continue
		}
		l.answered = append(l.answered, s(float64(tenth)/10))
	}
	l.faults = []fault{{name: "one", at: s(10.05)}, {name: "two", at: s(20.0)}}
	got := l.outages()
	for i, want := range []stretch{{s(10.0), s(12.0)}, {s(19.9), s(23.0)}} {
		if d := time.Duration(got[i].from-want.from).Abs() + time.Duration(got[i].to-want.to).Abs(); d > 20*time.Millisecond {
			t.Errorf("fault %d: stretch %.2f-%.2f s, want %.2f-%.2f s", i+1,
				time.Duration(got[i].from).Seconds(), time.Duration(got[i].to).Seconds(),
				time.Duration(want.from).Seconds(), time.Duration(want.to).Seconds())
		}
	}
}
