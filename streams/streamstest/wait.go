package streamstest

import (
	"testing"
	"time"
)

// PollInterval is how often Poll and Wait check their condition.
const PollInterval = 10 * time.Millisecond

// Poll checks cond every PollInterval until it holds (true) or within has
// passed (false): the one wait of the tests, always on something a test
// can see and always with a deadline, never a fixed time that hopes
// something has happened.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// Wait is Poll that fails the test, naming what it waited for, when cond
// does not hold within.
func Wait(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("%s: not within %v", what, within)
	}
}
