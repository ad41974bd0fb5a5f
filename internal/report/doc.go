// Package report renders the HTML report of one partition of a score
// table: what a person opens, offline, after a run or on demand. It shows
// the run (table, partition, model, run id, rows scored and rejected, the
// run's drift status), the partition's score histogram over the training
// data's and their quantiles, every input feature's drift
// (PSI and JS against training and the previous partition, missing rates,
// thresholds, status and a sparkline of its PSI over the last partitions)
// sorted by severity, and, when the partition has labels, its evaluation
// metrics and calibration curve.
//
// # Contract
//
// Render takes a Report that the caller has computed (this package computes
// no statistics) and writes one self-contained HTML document to the
// writer: inline CSS, charts as inline SVG laid out here, no script and no
// reference to anything outside the file (its Content-Security-Policy
// forbids loading anything), so it opens offline in any browser. It does no
// other I/O: no files, no network, no clock. Names from configuration
// (titles, models, features) are escaped by html/template. NaN stands for
// "not known" everywhere and is shown as "—"; infinities as "∞"; neither
// ever becomes an SVG coordinate.
//
// The output is deterministic: the same Report renders the same bytes,
// whatever the order of its Drift slice (which Render does not modify). The
// document is built in memory and written with one Write; an error wraps
// the writer's.
package report
