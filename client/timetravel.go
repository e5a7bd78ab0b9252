package client

// ForkRequest is the body of session.fork.
type ForkRequest struct {
	Mutation
	Session string            `json:"session"`
	At      At                `json:"at,omitempty"`
	Owner   string            `json:"owner,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	// InheritSecrets copies the parent's own secrets to the fork (sealed
	// again for it, each copy a SecretPut in the tenant log); a fork has
	// none of them otherwise. The tenant's secrets are seen by every
	// session anyway.
	InheritSecrets bool `json:"inherit_secrets,omitempty"`
}

// RestoreRequest is the body of session.restore.
type RestoreRequest struct {
	Mutation
	Session string `json:"session"`
	To      At     `json:"to"`
}

// CheckpointRequest is the body of checkpoint.create and checkpoint.delete.
type CheckpointRequest struct {
	Mutation
	Session string `json:"session"`
	Name    string `json:"name"`
	// At is what the checkpoint names (create only; default: the head).
	At   At     `json:"at,omitempty"`
	Note string `json:"note,omitempty"`
}

// CheckpointReply answers checkpoint.create and checkpoint.delete.
type CheckpointReply struct {
	Checkpoint CheckpointView `json:"checkpoint"`
	Position   uint64         `json:"position"`
	Replayed   bool           `json:"replayed,omitempty"`
}

// CheckpointListRequest is the body of checkpoint.list.
type CheckpointListRequest struct {
	Session string `json:"session"`
	At      At     `json:"at,omitempty"`
}

// CheckpointListReply answers checkpoint.list.
type CheckpointListReply struct {
	Checkpoints []CheckpointView `json:"checkpoints"`
	Position    uint64           `json:"position"`
}
