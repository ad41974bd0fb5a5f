package readers

// Supported returns nil if a key's extension names a format Open reads, and
// otherwise an error wrapping ErrBadInput that says which are.
func Supported(key string) error {
	_, err := formatOf(key)
	return err
}
