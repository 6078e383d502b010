package gateway

// SetTestPanic makes every request that passes call hook with its path
// before it goes upstream (nil for none): the tests' way to make the
// request path panic.
func SetTestPanic(hook func(path string)) {
	if hook == nil {
		testPanic.Store(nil)
		return
	}
	testPanic.Store(&hook)
}
