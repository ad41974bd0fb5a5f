// Package runlog keeps a durable record of every scoring run in the output
// store: who started it (by hand or the scheduler, for which slot), how it
// ended, what it read, scored and wrote, the operations it made on its
// stores (StoreOps, counted by store.Counted), and a short report
// (throughput, score quantiles and histogram). scorer history reads them;
// the scheduler's metrics are counted from them, so runs started by hand
// count exactly like scheduled ones.
//
// A run writes its record twice under _scorer/runs/<job>/<run_id>.json:
// when it starts (outcome "running", create-if-absent) and when it ends (the
// outcome). A record still "running" whose run holds no live lease is shown
// as "interrupted" (the process died) once StartGrace has passed. The key
// and the conditional writes come from internal/state; docs/store.md lists
// the whole _scorer/ layout.
package runlog
