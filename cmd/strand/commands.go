package main

import "context"

// group is one first word of the command line: a group whose second word
// names one of its commands (cmds), or a command of its own (run). Exactly
// one of run and cmds is set.
type group struct {
	name string
	// help says what the group does; for a command of its own it is its
	// line in `strand --help`, usage first.
	help string
	run  runFunc
	cmds []command
}

// command is one command of a group (strand session create).
type command struct {
	name, args, help string
	run              runFunc
}

// runFunc runs a command on the arguments after its name(s).
type runFunc func(m *Main, ctx context.Context, args []string) error

// commands is the command line, the one place a command is registered: Run
// dispatches through it and nothing else, and `strand --help` and
// `strand GROUP --help` list it in this order. The order follows a user's
// work: a session and its content, review, collaboration, the agent's
// tools, audit and figures, then running the service.
// TestCLI_TableIsTheCommandLine holds every command function to a row.
var commands = []group{
	{name: "session", help: "create, inspect, fork, restore and retire sessions", cmds: []command{
		{"create", "[--tag k=v]... [--owner NAME] [--request-id ID]", "create a session", (*Main).sessionCreate},
		{"get", "SESSION[@AT] [--at AT]", "show a session", (*Main).sessionGet},
		{"list", "[--status S] [--tag k=v]... [--owner O] [--parent P] [--limit N] [--cursor C]", "list sessions", (*Main).sessionList},
		{"stats", "SESSION [--bucket hour|day]", "a session's figures: events by type, actor and time, files changed, time to approval", (*Main).sessionStats},
		{"tag", "SESSION k=v... [--remove k]...", "set and remove tags", (*Main).sessionTag},
		{"fork", "SESSION [--at AT] [--tag k=v]...", "fork a session at its head, a checkpoint or a position", (*Main).sessionFork},
		{"restore", "SESSION --to AT", "point a session back to an earlier position or checkpoint", (*Main).sessionRestore},
		{"archive", "SESSION", "make a session read-only", (*Main).sessionArchive},
		{"delete", "SESSION", "delete a session (its history stays for forks and audit)", (*Main).sessionDelete},
	}},
	{name: "fs", help: "read and change a session's file tree", cmds: []command{
		{"ls", "SESSION [PREFIX] [--at AT] [--limit N] [--after PATH]", "list the tree (a manifest page)", (*Main).fsLs},
		{"cat", "SESSION PATH [--at AT]", "write a file's bytes to standard output", (*Main).fsCat},
		{"write", "SESSION PATH [--from FILE] [--mode OCTAL] [--expect-hash H]", "write a file from standard input or FILE", (*Main).fsWrite},
		{"mkdir", "SESSION PATH [--mode OCTAL]", "make a directory and its parents", (*Main).fsMkdir},
		{"rm", "[-r] SESSION PATH [--expect-hash H]", "remove a file, or a directory with -r", (*Main).fsRm},
		{"mv", "SESSION SRC DST", "move a path", (*Main).fsMv},
		{"ln", "SESSION TARGET LINK", "make a symbolic link LINK pointing at TARGET", (*Main).fsLn},
		{"chmod", "SESSION MODE PATH", "set the permission bits (octal, 0 to 7777) of a file or folder", (*Main).fsChmod},
		{"sync", "SESSION --tar FILE [--delete]", "apply a tar or tar.gz to a session as one batch (--delete: remove what the archive lacks)", (*Main).fsSync},
		{"grep", "SESSION PATTERN [PREFIX] [--at AT] [-i] [-F] [-C N] [--glob G] [--include G]... [--exclude G]...", "search file contents with a regular expression (server-side)", (*Main).fsGrep},
		{"find", "SESSION GLOB [PREFIX] [--at AT] [-i]", "list the paths that match a glob (** for any depth)", (*Main).fsFind},
		{"xattr", "set|get|list|rm SESSION PATH [NAME] [VALUE]", "extended attributes of a path", (*Main).fsXattr},
	}},
	{name: "checkpoint", help: "name positions of a session's history", cmds: []command{
		{"create", "SESSION NAME [--note TEXT] [--at AT]", "name the head (or AT) of a session", (*Main).checkpointCreate},
		{"list", "SESSION [--at AT]", "list a session's checkpoints", (*Main).checkpointList},
		{"rm", "SESSION NAME", "remove a checkpoint name", (*Main).checkpointRm},
	}},
	{name: "diff", help: "strand diff [FROM_SESSION[@AT]] SESSION[@AT] [--path P] [--context N] | strand diff [DIR] (a working copy's changes)", run: (*Main).cmdDiff},
	{name: "events", help: "strand events SESSION [--at AT] [--from POS] [--limit N]", run: (*Main).cmdEvents},
	{name: "merge", help: "strand merge FROM_SESSION[@AT] INTO_SESSION [--strategy ours|theirs] [--path P[=ours|theirs]]...", run: (*Main).cmdMerge},
	{name: "source", help: "baselines with numbered revisions: create, import, promote", cmds: []command{
		{"create", "NAME [--description TEXT] [--blank]", "create a source (--blank: with an empty revision 1)", (*Main).sourceCreate},
		{"list", "", "list the tenant's sources", (*Main).sourceList},
		{"get", "NAME", "show a source and its revisions", (*Main).sourceGet},
		{"import", "NAME (--tar FILE | --git PATH [--ref REF] | --dir PATH) [--wait]",
			"import a tar/tar.gz, a git repository or bundle (uploaded as a bundle; needs git here for a repository), or a directory of the server host", (*Main).sourceImport},
		{"job", "JOB [--wait]", "show an import job", (*Main).sourceJob},
		{"promote", "NAME SESSION[@AT]", "make a session's tree the source's next revision", (*Main).sourcePromote},
		{"rm", "NAME", "delete a source (sessions started from it keep working)", (*Main).sourceRm},
	}},
	{name: "export", help: "write a session's tree out: a tar stream or a git commit", cmds: []command{
		{"tar", "SESSION[@AT] [--out FILE]", "write the tree as a tar stream to standard output (or FILE)", (*Main).exportTar},
		{"git", "SESSION[@AT] --repo PATH --branch NAME [--message M] [--author 'Name <email>']",
			"write the tree as a commit on a branch of a git repository (a bare one is created if missing)", (*Main).exportGit},
	}},
	{name: "review", help: "annotate, request approval, grant or deny", cmds: []command{
		{"annotate", "SESSION --body TEXT [--path P] [--lines A-B] [--reply-to NOTE]", "add a review note", (*Main).reviewAnnotate},
		{"notes", "SESSION [--path P] [--status open|resolved] [--at AT]", "list review notes", (*Main).reviewNotes},
		{"resolve", "SESSION NOTE", "mark a note resolved", (*Main).reviewResolve},
		{"reopen", "SESSION NOTE", "mark a note open again", (*Main).reviewReopen},
		{"request", "SESSION --reason R [--group G] [--details JSON]", "ask for approval of the current content", (*Main).reviewRequest},
		{"pending", "[--group G] [--session S [--all]]", "list requests waiting for a decision, oldest first", (*Main).reviewPending},
		{"grant", "SESSION REQUEST [--comment TEXT]", "grant an approval request", (*Main).reviewGrant},
		{"deny", "SESSION REQUEST [--comment TEXT]", "deny an approval request", (*Main).reviewDeny},
	}},
	{name: "policy", help: "approval policies: how many grants each action needs", cmds: []command{
		{"get", "[--session S]", "show the tenant's default (and a session's) policy", (*Main).policyGet},
		{"set", "ACTION=N... [--session S]", "set the tenant's default or (with an approval) a session's policy", (*Main).policySet},
	}},
	{name: "group", help: "reviewer groups: with identity on, only members decide a request addressed to the group", cmds: []command{
		{"set", "NAME MEMBER...", "set a group's members (replaces them)", (*Main).groupSet},
		{"get", "NAME", "show a group's members", (*Main).groupGet},
		{"list", "", "list the tenant's groups", (*Main).groupList},
		{"rm", "NAME", "delete a group", (*Main).groupRm},
	}},
	{name: "commit", help: "durable outcomes: record, list, show, summarize", cmds: []command{
		{"create", "SESSION --message TEXT [--author NAME]", "commit the session's current content (the policy may require an approval)", (*Main).commitCreate},
		{"list", "SESSION", "list a session's commits", (*Main).commitList},
		{"show", "COMMIT [--session S]", "show a commit", (*Main).commitShow},
		{"summary", "SESSION[@AT]", "what the session changed against its base", (*Main).commitSummary},
	}},
	{name: "cache", help: "the session's knowledge cache: key -> bytes with revisions and TTLs", cmds: []command{
		{"put", "SESSION KEY VALUE [--ttl D] [--expect-rev N]", "write a key (with --expect-rev: compare and set)", (*Main).cachePut},
		{"get", "SESSION KEY [--at AT]", "print a key's value", (*Main).cacheGet},
		{"rm", "SESSION KEY", "delete a key", (*Main).cacheRm},
		{"cas", "SESSION KEY VALUE --expect-rev N [--ttl D]", "write a key only at revision N (0: only if absent)", (*Main).cacheCAS},
		{"keys", "SESSION [PREFIX] [--after K] [--limit N] [--at AT]", "list keys", (*Main).cacheKeys},
		{"meta", "SESSION KEY", "show a key's revision, size and expiry", (*Main).cacheMeta},
		{"stats", "SESSION [PREFIX]", "count keys and bytes", (*Main).cacheStats},
		{"rm-prefix", "SESSION PREFIX", "delete every key with a prefix", (*Main).cacheRmPrefix},
	}},
	{name: "lock", help: "path leases: a write under someone else's lease is refused", cmds: []command{
		{"acquire", "SESSION PATH [--subtree] [--ttl D]", "take a lease; prints its token", (*Main).lockAcquire},
		{"renew", "SESSION PATH --token T [--ttl D]", "extend a lease", (*Main).lockRenew},
		{"release", "SESSION PATH --token T", "end a lease", (*Main).lockRelease},
		{"force-release", "SESSION PATH", "end someone else's lease (recorded with your actor)", (*Main).lockForce},
		{"list", "SESSION", "list leases", (*Main).lockList},
	}},
	{name: "bus", help: "live per-session topics on plain NATS subjects, with retained history", cmds: []command{
		{"pub", "SESSION TOPIC MESSAGE", "publish a message through the service", (*Main).busPub},
		{"sub", "SESSION TOPIC [--replay N]", "print messages as they arrive (after the last N retained)", (*Main).busSub},
		{"replay", "SESSION TOPIC [--limit N]", "print a topic's retained history", (*Main).busReplay},
	}},
	{name: "health", help: "test-run results recorded on a session", cmds: []command{
		{"report", "SESSION (--pass | --fail) [--passed N] [--failed N] [--skipped N] [--summary TEXT] [--details JSON]", "record a result", (*Main).healthReport},
		{"get", "SESSION [--at AT]", "show the latest result", (*Main).healthGet},
	}},
	{name: "checkout", help: "strand checkout SESSION[@AT] DIR   (a working copy: status, diff, push, pull in it)", run: (*Main).cmdCheckout},
	{name: "status", help: "strand status [DIR]", run: (*Main).cmdStatus},
	{name: "push", help: "strand push [DIR] [--checkpoint NAME] [--message TEXT] [--token T] [--force] [--atomic]", run: (*Main).cmdPush},
	{name: "pull", help: "strand pull [DIR]", run: (*Main).cmdPull},
	{name: "run", help: "strand run SESSION [--fork] [--count N] [--checkpoint-before NAME] [--dir DIR] [--push-every D] -- COMMAND [ARGS...]", run: (*Main).cmdRun},
	{name: "mount", help: "strand mount SESSION[@AT] DIR [--cache DIR] [--cache-size N] [--flush-interval D] [--ttl D]\n" +
		"               strand mount --status|--flush DIR   strand mount --resolve PATH --keep local|remote DIR", run: (*Main).cmdMount},
	{name: "unmount", help: "strand unmount DIR   (flushes, then unmounts)", run: (*Main).cmdUnmount},
	{name: "mcp", help: "strand mcp [--session S | --fork S] [--http ADDR]   (MCP server for agents; docs/agents.md)", run: (*Main).cmdMCP},
	{name: "secret", help: "secrets for runs, sealed at rest: a session's own, or the tenant's (no SESSION)", cmds: []command{
		{"put", "[SESSION] NAME [VALUE]", "store a secret (VALUE from standard input when not given)", (*Main).secretPut},
		{"get", "[SESSION] NAME", "print a secret's value (a session's own, else its tenant's); the read is audited", (*Main).secretGet},
		{"list", "[SESSION]", "list secrets without their values", (*Main).secretList},
		{"rm", "[SESSION] NAME", "delete a secret", (*Main).secretRm},
		{"rekey", "", "seal every secret of the tenant again under the server's newest key", (*Main).secretRekey},
	}},
	{name: "audit", help: "verify, rebuild and read histories straight from the streams (no service needed)", cmds: []command{
		{"verify", "[--session S | --all] [--tenant T] [--heads FILE] [--anchors FILE]",
			"check versions, hash chains, blobs and Merkle roots; print OK or the first bad event of each broken history (exit 1)", (*Main).auditVerify},
		{"replay", "SESSION [--at POSITION|CHECKPOINT|COMMIT] --to DIR [--force]",
			"write the tree as it was to a local directory, with modes and symlinks", (*Main).auditReplay},
		{"log", "[--session S] [--actor A] [--type T] [--path P] [--since TIME] [--until TIME] [--timeline]",
			"the history as JSON lines, or a timeline", (*Main).auditLog},
		{"blame", "SESSION PATH", "every event that changed a path: when, who, what kind of change", (*Main).auditBlame},
	}},
	{name: "tenant", help: "the tenant's own history", cmds: []command{
		{"log", "[--from POS] [--limit N]", "settings, group and secret changes and secret reads, hash-chained", (*Main).tenantLog},
	}},
	{name: "activity", help: "strand activity [--limit N] [--before POS]   (the tenant's recent events)", run: (*Main).cmdActivity},
	{name: "usage", help: "strand usage   (the tenant's sessions, events, bytes and requests)", run: (*Main).cmdUsage},
	{name: "projections", help: "read models folded from the event stream: position, lag, rebuild", cmds: []command{
		{"status", "", "every projection with its position and lag (asks a running service)", (*Main).projectionsStatus},
		{"rebuild", "NAME [--no-wait]", "fold a projection again from sequence 1 (talks to JetStream directly: an operator's command)", (*Main).projectionsRebuild},
	}},
	{name: "serve", help: "strand serve [--data DIR] [--listen HOST:PORT] [--nats URLS] [--replicas N] [--http ADDR]", run: (*Main).runServe},
	{name: "gateway", help: "strand gateway --nats URLS [--http ADDR]", run: (*Main).runGateway},
	{name: "worker", help: "strand worker [summary|gc|retention]... [--once] [--dry-run] [--gc-grace D] [--retention-idle D]", run: (*Main).runWorker},
	{name: "doctor", help: "strand doctor [--http URL] [--replicas N]   (checks a deployment end to end, says what to fix)", run: (*Main).cmdDoctor},
	{name: "bench", help: "strand bench [--quick] [--json] [--nats URLS] [--rows r1,r2]", run: (*Main).runBench},
}

// lookupGroup returns the row of the table named name, or nil.
func lookupGroup(name string) *group {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// lookup returns the group's command named name, or nil.
func (g *group) lookup(name string) *command {
	for i := range g.cmds {
		if g.cmds[i].name == name {
			return &g.cmds[i]
		}
	}
	return nil
}
