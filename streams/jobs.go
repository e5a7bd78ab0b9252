package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

func jobKey(tenant, id string) string { return tenant + "." + id }

func (st *Store) jobs(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := st.js.KeyValue(ctx, names.JobBucket)
	if err != nil {
		return nil, domain.Wrap(err, "open job bucket")
	}
	return kv, nil
}

func ensureJobBucket(ctx context.Context, js jetstream.JetStream, c Config) error {
	_, err := EnsureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      names.JobBucket,
		Description: "Strand asynchronous jobs (source imports): state and progress",
		History:     1,
		TTL:         7 * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	})
	return err
}

// CreateJob stores a new job; it fails with already_exists for a known id.
func (st *Store) CreateJob(ctx context.Context, j *domain.Job) error {
	kv, err := st.jobs(ctx)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(j)
	rev, err := kv.Create(ctx, jobKey(j.Tenant, j.ID), body)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return domain.Errorf(domain.CodeAlreadyExists, "job %s already exists", j.ID)
	}
	if err != nil {
		return domain.Wrap(err, "create job")
	}
	j.Rev = rev
	return nil
}

// GetJob reads a job.
func (st *Store) GetJob(ctx context.Context, tenant, id string) (*domain.Job, error) {
	kv, err := st.jobs(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, jobKey(tenant, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, domain.Errorf(domain.CodeNotFound, "job %q not found", id)
	}
	if err != nil {
		return nil, domain.Wrap(err, "read job")
	}
	var j domain.Job
	if err := json.Unmarshal(e.Value(), &j); err != nil {
		return nil, domain.Wrap(fmt.Errorf("job %s: %w", id, err), "decode job")
	}
	j.Rev = e.Revision()
	return &j, nil
}

// UpdateJob stores a job's new state if nobody changed it since it was read
// (or last stored through j); otherwise it fails with conflict.
func (st *Store) UpdateJob(ctx context.Context, j *domain.Job) error {
	kv, err := st.jobs(ctx)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(j)
	rev, err := kv.Update(ctx, jobKey(j.Tenant, j.ID), body, j.Rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isConflict(err) {
			return domain.ErrJobMoved
		}
		return domain.Wrap(err, "update job")
	}
	j.Rev = rev
	return nil
}

// ExpireJob marks a job failed when it is not done and its runner's
// heartbeat is older than timeout: its instance stopped. It returns the job
// as it is now.
func (st *Store) ExpireJob(ctx context.Context, j *domain.Job, now time.Time, timeout time.Duration) (*domain.Job, error) {
	if j.Done() || now.Sub(j.Heartbeat) < timeout {
		return j, nil
	}
	x := *j
	x.State = domain.JobFailed
	x.ErrorCode = string(domain.CodeUnavailable)
	x.ErrorMessage = fmt.Sprintf("the instance running the job stopped answering (no progress for %s); start the import again", timeout)
	x.UpdatedAt = now
	err := st.UpdateJob(ctx, &x)
	if errors.Is(err, domain.ErrJobMoved) {
		return st.GetJob(ctx, j.Tenant, j.ID)
	}
	if err != nil {
		return nil, err
	}
	return &x, nil
}
