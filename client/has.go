package client

// MaxHasHashes bounds the hashes of one fs.has.
const MaxHasHashes = 10000

// HasRequest is the body of fs.has: which of these content hashes may this
// tenant write by reference (chunks of fs.write and fs.batch) without
// uploading them again?
type HasRequest struct {
	Hashes []string `json:"hashes"`
}

// HasReply answers fs.has: the hashes asked for that the tenant uploaded
// (within the claim time, 24 h) and the store still holds, in the order
// asked.
type HasReply struct {
	Have []string `json:"have"`
}
