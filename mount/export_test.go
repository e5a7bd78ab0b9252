package mount

// Crash stops the mount the way a killed process stops: nothing is
// flushed; only what the journal holds survives.
func (m *Mount) Crash() {
	m.stopped.Do(func() {
		m.cancel()
		_ = ForceUnmount(m.opts.Dir)
		m.wg.Wait()
		if m.journal != nil {
			m.journal.leaveSpares()
			m.journal.close()
		}
	})
	m.finish()
}

// leaveSpares stops making spare staging files and leaves those made on
// disk, as a killed mount process would.
func (j *journal) leaveSpares() {
	if j.stopSpares != nil {
		close(j.stopSpares)
		<-j.sparesDone
		j.stopSpares = nil
	}
}

// JournalDir is where the mount's journal is.
func (m *Mount) JournalDir() string { return m.journal.dir }
