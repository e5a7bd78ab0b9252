package mount

// Crash stops the mount the way a killed process stops: nothing is
// flushed; only what the journal holds survives.
func (m *Mount) Crash() {
	m.stopped.Do(func() {
		m.cancel()
		_ = ForceUnmount(m.opts.Dir)
		m.wg.Wait()
		if m.journal != nil {
			m.journal.close()
		}
	})
	m.finish()
}

// JournalDir is where the mount's journal is.
func (m *Mount) JournalDir() string { return m.journal.dir }
