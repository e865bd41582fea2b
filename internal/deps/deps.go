// Package deps pins the module set while the packages that use it are written.
package deps

import (
	_ "github.com/cloudflare/circl/kem/mlkem/mlkem768"
	_ "github.com/cloudflare/circl/sign/mldsa/mldsa65"
	_ "github.com/gorilla/rpc/v2"
	_ "github.com/gorilla/rpc/v2/json2"
	_ "github.com/luxfi/consensus/engine/chain/block"
	_ "github.com/luxfi/database"
	_ "github.com/luxfi/database/badgerdb"
	_ "github.com/luxfi/database/memdb"
	_ "github.com/luxfi/database/prefixdb"
	_ "github.com/luxfi/database/versiondb"
	_ "github.com/luxfi/ids"
	_ "github.com/luxfi/log"
	_ "github.com/luxfi/node/vms/rpcchainvm"
	_ "github.com/luxfi/node/vms/rpcchainvm/runtime"
	_ "golang.org/x/crypto/blake2b"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/scrypt"
)
