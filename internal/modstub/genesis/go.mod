// Empty stand-in for github.com/luxfi/genesis: see ../README.md.
module github.com/luxfi/genesis

go 1.21
