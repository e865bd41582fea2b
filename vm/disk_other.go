//go:build !unix

package vm

import "errors"

// availableBytes is not implemented here: NewDiskGuard fails, and the node
// runs without a disk guard.
func availableBytes(string) (uint64, error) { return 0, errors.ErrUnsupported }

func dbFileSizes(string) (lsm, vlog int64) { return 0, 0 }
