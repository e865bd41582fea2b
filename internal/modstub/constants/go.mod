// Empty stand-in for github.com/luxfi/constants: see ../README.md.
module github.com/luxfi/constants

go 1.21
