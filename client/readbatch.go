package client

// MaxReadBatchPaths bounds the paths of one fs.read_batch.
const MaxReadBatchPaths = 1000

// ReadBatchRequest is the body of fs.read_batch: many paths of one session
// at one point, read in one request.
type ReadBatchRequest struct {
	Session string   `json:"session"`
	At      At       `json:"at,omitempty"`
	Paths   []string `json:"paths"`
	// MaxBytes bounds the content of the reply (0: as much as one reply
	// holds).
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// ReadBatchFile is one path of an fs.read_batch reply. Content is sent once
// per hash in a reply: a later file with a hash sent before has no content.
// More is true when the content is not in this reply (the reply was full,
// or the file alone is larger than a reply): read it with fs.read, or ask
// again. Error is set, and nothing else but Path, for a path that cannot
// be read (not_found, invalid_argument).
type ReadBatchFile struct {
	Path    string       `json:"path"`
	Kind    string       `json:"kind,omitempty"`
	Size    int64        `json:"size,omitempty"`
	Mode    uint32       `json:"mode,omitempty"`
	Hash    string       `json:"hash,omitempty"`
	Target  string       `json:"target,omitempty"`
	Content []byte       `json:"content,omitempty"`
	More    bool         `json:"more,omitempty"`
	Error   *ErrorDetail `json:"error,omitempty"`
}

// ReadBatchReply answers fs.read_batch: the files in the order asked, at
// one position.
type ReadBatchReply struct {
	Files    []ReadBatchFile `json:"files"`
	Position uint64          `json:"position"`
}
