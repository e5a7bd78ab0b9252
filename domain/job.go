package domain

import (
	"time"
)

// Job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job is the state of one asynchronous job. A job runs on a goroutine of the
// instance that accepted it, which records its progress and a heartbeat. If
// that instance dies, the job stays queued or running with a heartbeat that
// stops moving; whoever reads it after the timeout (source.job, on any
// instance) marks it failed, with a compare-and-set so that a runner that is
// alive after all and a reader never both win.
type Job struct {
	ID       string `json:"id"`
	Tenant   string `json:"tenant"`
	Kind     string `json:"kind"`
	Source   string `json:"source"`
	State    string `json:"state"`
	Files    int64  `json:"files"`
	Bytes    int64  `json:"bytes"`
	Revision uint64 `json:"revision,omitempty"`
	Root     string `json:"root,omitempty"`
	// ErrorCode and ErrorMessage say why a job failed.
	ErrorCode    string    `json:"error_code,omitempty"`
	ErrorMessage string    `json:"error_message,omitempty"`
	Instance     string    `json:"instance,omitempty"`
	Actor        string    `json:"actor,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Heartbeat is when the runner last said it is alive.
	Heartbeat time.Time `json:"heartbeat"`

	// Rev is the revision the store read the job at, for its
	// compare-and-set; it is not part of the wire.
	Rev uint64 `json:"-"`
}

// Done reports whether the job ended.
func (j *Job) Done() bool { return j.State == JobSucceeded || j.State == JobFailed }
