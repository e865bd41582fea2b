// Package multinode tests SessionVM as a Lux network runs it: several
// validators, each a node holding its own database and loading the plugin
// binary (cmd/sessionvm, built once) through luxfi/node's rpcchainvm client
// (NewFactory -> VMClient), one shared genesis, blocks decided by
// luxfi/consensus (nova with wave polling), and a small in-test network
// that carries app gossip and block messages between the nodes.
//
// The package has only tests; what a node does is in network_test.go:
//
//   - Blocks: a proposer builds when the plugin has pending transactions
//     and no block is undecided at the next height, and sends the block to
//     every peer; a peer parses and verifies it (the state commitment
//     included) through its own plugin.
//   - Voting: nova/wave polls every validator (K = all, alpha a strict
//     majority, beta rounds). A validator answers yes for a block it
//     accepted or prefers at that height, no for one it rejected or does
//     not prefer, and nothing for a block it has not seen. It prefers the
//     first block it verified at a height and switches only to a block a
//     poll showed a majority preferring, so no two blocks of one height
//     can both gather majorities.
//   - Catch-up and bootstrapping, as a Lux node's bootstrapper does: a node
//     that starts, restarts, falls behind, or receives a block whose
//     parent it lacks asks the validators for their accepted frontier,
//     takes the highest block that a majority of them accepted and agree
//     on, fetches it and its ancestors with GetAncestors, and parses,
//     verifies and accepts them in height order through its plugin.
//   - App gossip goes through each plugin's app sender to every other live
//     node; the network can hold block messages or drop gossip to create
//     competing proposals and lost messages.
//
// The network scenarios are long tests (internal/testenv): they run when
// SESSION_LONG_TESTS=1, which .ci/run sets in its own step, so the
// README's test command stays short. TestPluginExitsWhenNodeDies runs
// always.
package multinode
