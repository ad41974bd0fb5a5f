package store

// SetListPageSize sets the page size of GCS listings for a test and returns
// the function that restores it.
func SetListPageSize(n int) (restore func()) {
	old := listPageSize
	listPageSize = n
	return func() { listPageSize = old }
}
