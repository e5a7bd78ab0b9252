package domain

// Sizes the store and the service agree on.

// DefaultChunkSize is the largest blob stored as a single message. Larger
// content is stored as chunks (each a blob of its own, so equal chunks are
// stored once) plus an index blob under the hash of the whole content. It
// stays below NATS's default 1 MiB max_payload so a cluster with default
// settings works.
const DefaultChunkSize = 512 << 10

// MaxBlobSize bounds one file's content.
const MaxBlobSize = 1 << 30

// DefaultMaxPayload is the embedded server's message limit: large enough for
// one 4 MiB blob chunk in base64 JSON plus headers. The service refuses
// larger request bodies by default.
const DefaultMaxPayload = 8 << 20
