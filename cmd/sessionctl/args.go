package main

import (
	"flag"
	"fmt"
	"regexp"
	"strings"

	"github.com/luxfi/ids"
)

// helpRequested is returned by parseFlags for -h, -help or --help: run
// prints the command's usage on stdout and exits 0.
type helpRequested struct{ cmd string }

func (h helpRequested) Error() string { return "help requested for " + h.cmd }

// flagShaped matches an argument that is meant as a flag: one or two
// dashes, a letter, then letters, digits, '-' or '_', optionally "=value".
// Anything else that starts with a dash ("-", "-5", "-x marks the spot")
// is an argument.
var flagShaped = regexp.MustCompile(`^--?[A-Za-z][A-Za-z0-9_-]*(=.*)?$`)

// boolFlag is a flag.Value that needs no argument.
type boolFlag interface{ IsBoolFlag() bool }

// parseFlags parses the flags of the subcommand fs.Name() anywhere among
// args and returns the other arguments in order.
//
//   - "--" ends the flags: everything after it is an argument, so any
//     text can be passed ("send S -- --not-a-flag").
//   - "-" alone is an argument (standard input).
//   - An argument that starts with a dash but is not flag-shaped ("-x marks
//     the spot", "-5") is an argument.
//   - A flag-shaped argument this command does not know is an error that
//     says how to pass it as text instead.
//   - -h, -help and --help return helpRequested.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(positional, args[i+1:]...), nil
		}
		if !flagShaped.MatchString(a) {
			positional = append(positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return nil, helpRequested{fs.Name()}
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, usageError{fmt.Sprintf("%s: unknown flag %s (to pass text that starts with '-', put -- before it: sessionctl %s ... -- TEXT)",
				fs.Name(), flagName(a), fs.Name())}
		}
		if bf, ok := f.Value.(boolFlag); ok && bf.IsBoolFlag() {
			if !hasValue {
				value = "true"
			}
			if err := fs.Set(name, value); err != nil {
				return nil, usageError{fmt.Sprintf("%s: flag --%s takes no value (or =true, =false)", fs.Name(), name)}
			}
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, usageError{fmt.Sprintf("%s: flag --%s needs a value", fs.Name(), name)}
			}
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return nil, usageError{fmt.Sprintf("%s: --%s %s: %v", fs.Name(), name, value, err)}
		}
	}
	return positional, nil
}

// flagName is a flag argument without its value (which might be secret).
func flagName(a string) string {
	name, _, _ := strings.Cut(a, "=")
	return name
}

// noFlags parses the arguments of a command without flags of its own
// (so that --help and stray flags are handled like everywhere else).
func noFlags(name string, args []string) ([]string, error) {
	return parseFlags(flag.NewFlagSet(name, flag.ContinueOnError), args)
}

// Global flags and whether each takes a value.
var globalFlags = map[string]bool{"node": true, "identity": true, "timeout": true, "json": false, "no-wait": false}

// splitGlobalFlags takes the global flags out of args wherever they stand
// ("sessionctl send S hi --json" as well as "sessionctl --json send S hi"),
// up to a "--", which stays in place for the subcommand: everything after
// it is text, even "--json".
func splitGlobalFlags(args []string) (globals, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := globalFlags[name]
		if !flagShaped.MatchString(a) || !ok {
			rest = append(rest, a)
			continue
		}
		globals = append(globals, a)
		if takesValue && !hasValue && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
	}
	return globals, rest
}

// oneSession parses the arguments of a command that takes one session ID
// and no flags ("NAME SESSION").
func oneSession(name string, args []string) (ids.ID, error) {
	pos, err := noFlags(name, args)
	if err != nil {
		return ids.Empty, err
	}
	if len(pos) != 1 {
		return ids.Empty, usageError{name + " SESSION"}
	}
	return parseTarget("session", pos[0])
}
