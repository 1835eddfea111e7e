//go:build !weirtesthooks

package engine

// afterCommit runs between a committed checkpoint and the apply of its
// state to Badger. Only test builds (-tags weirtesthooks) do anything here.
func afterCommit() {}
