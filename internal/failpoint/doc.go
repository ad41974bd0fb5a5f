// Package failpoint lets crash tests kill the process at a named point of a
// run, so that recovery is tested against real SIGKILLs rather than simulated
// errors.
//
// It works only in binaries built with -tags failpoints (the crash tests
// build theirs so); the default build, the production one, compiles Hit to
// an empty function and Enabled to false, and never reads the environment.
//
// In a failpoints build, SCORER_FAILPOINT=name kills the process (SIGKILL)
// the first time Hit(name) is called; name:N kills it on the Nth call;
// name:N:stop stops it instead (SIGSTOP, as a stalled VM or a long GC pause
// would) until a SIGCONT. Without SCORER_FAILPOINT it does nothing. Names are
// listed where Hit is called (grep "failpoint.Hit").
package failpoint
