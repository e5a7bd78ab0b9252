// Package arch holds the layer rules of the code base as a test: which of
// the project's packages may import which (docs/architecture.md explains
// why). It has no code of its own.
package arch
