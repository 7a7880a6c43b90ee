// Command vpcnet is the user's tool: capacity planning, the vpcsim emulator and the local lab.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// subcommands is filled by the init functions of this package's files, one file a command group.
var subcommands []func() *cobra.Command

// usageError marks bad input (flags, arguments); vpcnet exits 2 on it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "vpcnet",
		Short: "VPC-native pod networking: plan it, emulate a VPC, run a lab cluster on one machine",
		Long: `vpcnet gives every pod a real address from the VPC subnet, the way the AWS VPC CNI does on EKS.

This tool plans capacity (vpcnet plan), runs vpcsim, an emulated VPC that AWS clients talk to
(vpcnet sim), and runs a whole cluster with a real data plane in network namespaces (vpcnet lab).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	// cobra adds its completion group only when it runs; add it now so that it is refused too.
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(helpCommand(root))
	refuseUnknownSubcommands(root)
	return root
}

// helpCommand is cobra's "help [command]", except that a topic naming no command is refused like
// an unknown subcommand (one line, exit 2) where cobra prints the root's help with exit 0.
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help provides help for any command in the application: vpcnet help lab up.",
		RunE: func(_ *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil {
				return usageError{fmt.Errorf("no help topic %q: %w", strings.Join(args, " "), err)}
			}
			if len(rest) > 0 {
				return usagef("no help topic %q: %v", strings.Join(args, " "), unknownCommand(target, rest[0]))
			}
			return target.Help()
		},
	}
}

// refuseUnknownSubcommands makes every command group (a command with subcommands and no action of
// its own) refuse an argument that names none of its subcommands: one line, cobra's
// "unknown command X for Y" with its suggestions, and exit 2. Without it cobra accepts the
// argument of a group below the root and prints the group's help with exit 0. A group run with
// no argument still prints its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return usageError{unknownCommand(c, args[0])}
	}
	c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
}

// unknownCommand is "unknown command NAME for GROUP", with cobra's suggestions for a near miss
// or else the group's commands.
func unknownCommand(c *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's own default, which it sets on the root only
	}
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	} else if c.HasAvailableSubCommands() {
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		msg += "; its commands: " + strings.Join(names, ", ")
	} else {
		msg += "; it has no subcommands"
	}
	return errors.New(msg)
}

func main() {
	err := newRoot().Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "vpcnet:", oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}

// oneLine folds a multi-line error (cobra's "Did you mean this?") into one line.
func oneLine(msg string) string {
	fields := strings.Fields(strings.ReplaceAll(msg, "\n\n", "; "))
	return strings.Join(fields, " ")
}
