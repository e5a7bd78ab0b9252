package handlers

import (
	"github.com/strand-dev/strand/client"
)

// routes binds every row of the endpoint table (client.Endpoints, the one
// list of the service's subjects, their effects and body types) to its
// handler. Start registers the rows in the table's order and refuses to
// start if one has no handler here; TestRoutes_EveryRowHasAHandler says so
// in a test.
func (s *Service) routes() map[*client.Endpoint]handlerFunc {
	return map[*client.Endpoint]handlerFunc{
		client.SessionCreate:  s.sessionCreate,
		client.SessionGet:     s.sessionGet,
		client.SessionList:    s.sessionList,
		client.SessionArchive: s.sessionArchive,
		client.SessionDelete:  s.sessionDelete,
		client.SessionTag:     s.sessionTag,
		client.SessionFork:    s.sessionFork,
		client.SessionRestore: s.sessionRestore,
		client.SessionStats:   s.sessionStats,

		client.FSManifest:    s.fsManifest,
		client.FSRead:        s.fsRead,
		client.FSReadBatch:   s.fsReadBatch,
		client.FSSearch:      s.fsSearch,
		client.FSHas:         s.fsHas,
		client.FSWrite:       s.fsWrite,
		client.FSUpload:      s.fsUpload,
		client.FSMkdir:       s.fsMkdir,
		client.FSRemove:      s.fsRemove,
		client.FSRename:      s.fsRename,
		client.FSSymlink:     s.fsSymlink,
		client.FSChmod:       s.fsChmod,
		client.FSBatch:       s.fsBatch,
		client.FSSync:        s.fsSync,
		client.FSXattrSet:    s.xattrSet,
		client.FSXattrGet:    s.xattrGet,
		client.FSXattrList:   s.xattrList,
		client.FSXattrRemove: s.xattrRemove,

		client.EventsList: s.eventsList,

		client.CheckpointCreate: s.checkpointCreate,
		client.CheckpointList:   s.checkpointList,
		client.CheckpointDelete: s.checkpointDelete,

		client.DiffTrees: s.diff,

		client.MergeInto: s.merge,

		client.CacheGet:          s.cacheGet,
		client.CachePut:          s.cachePut,
		client.CacheDelete:       s.cacheDelete,
		client.CacheExists:       s.cacheExists,
		client.CacheMeta:         s.cacheMeta,
		client.CacheCAS:          s.cacheCAS,
		client.CacheKeys:         s.cacheKeys,
		client.CacheStats:        s.cacheStats,
		client.CacheBatchGet:     s.cacheBatchGet,
		client.CacheBatchPut:     s.cacheBatchPut,
		client.CacheBatchDelete:  s.cacheBatchDelete,
		client.CacheDeletePrefix: s.cacheDeletePrefix,

		client.LockAcquire:      s.lockAcquire,
		client.LockRenew:        s.lockRenew,
		client.LockRelease:      s.lockRelease,
		client.LockForceRelease: s.lockForceRelease,
		client.LockList:         s.lockList,

		client.HealthReport: s.healthReport,
		client.HealthGet:    s.healthGet,

		client.BusPublish: s.busPublish,
		client.BusReplay:  s.busReplay,

		client.ReviewAnnotate: s.reviewAnnotate,
		client.ReviewNotes:    s.reviewNotes,
		client.ReviewResolve:  s.reviewResolve,
		client.ReviewReopen:   s.reviewReopen,
		client.ReviewRequest:  s.reviewRequest,
		client.ReviewGrant:    s.reviewGrant,
		client.ReviewDeny:     s.reviewDeny,
		client.ReviewPending:  s.reviewPending,

		client.PolicyGet: s.policyGet,
		client.PolicySet: s.policySet,

		client.CommitCreate:  s.commitCreate,
		client.CommitList:    s.commitList,
		client.CommitGet:     s.commitGet,
		client.CommitSummary: s.commitSummary,

		client.SourceCreate:  s.sourceCreate,
		client.SourceGet:     s.sourceGet,
		client.SourceList:    s.sourceList,
		client.SourceDelete:  s.sourceDelete,
		client.SourceUpload:  s.sourceUpload,
		client.SourceImport:  s.sourceImport,
		client.SourceJob:     s.sourceJob,
		client.SourcePromote: s.sourcePromote,

		client.SecretPut:    s.secretPut,
		client.SecretGet:    s.secretGet,
		client.SecretList:   s.secretList,
		client.SecretDelete: s.secretDelete,
		client.SecretRekey:  s.secretRekey,

		client.GroupSet:    s.groupSet,
		client.GroupGet:    s.groupGet,
		client.GroupList:   s.groupList,
		client.GroupDelete: s.groupDelete,

		client.TenantLog: s.tenantLog,

		client.ActivityList: s.activityList,

		client.ProjectionsStatus: s.projectionsStatus,
		client.UsageGet:          s.usageGet,
	}
}
