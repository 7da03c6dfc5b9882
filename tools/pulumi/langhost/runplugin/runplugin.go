//go:build zkmigrate_runplugin

// RunPlugin for the Node.js language host v3.68.0, so that the CLI v3.259.0 can run a Node.js
// policy pack (`pulumi preview --policy-pack <dir>`).
//
// Written for zkmigrate; not part of the upstream module. install.sh compiles this file into the
// package main of github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs with
// `go build -overlay`, in place of that version's RunPlugin, which only answers "not supported".
//
// Why: a CLI that finds a language plugin for a pack's runtime (`nodejs`) starts the pack through
// that plugin's RunPlugin (kind "analyzer"); only when it finds none does it fall back to the old
// `pulumi-analyzer-policy-<runtime>` program on PATH. The language host that runs our program is
// always found, so RunPlugin is the one way in.
//
// What it does: runs `node <@pulumi/pulumi/cmd/run-policy-pack> <engine address> <pack dir>` in
// the pack directory, with the module resolved from the pack's own node_modules, and streams the
// process's stdout (the pack prints the port of its analyzer server there), stderr and exit code
// back to the CLI. The request fields this version's protobuf types do not know (`info`, field 5,
// whose `program_directory` is field 2; `kind`, field 6) are read from the unknown fields.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// runPluginFields reads `kind` and `info.program_directory` from a RunPluginRequest encoded by a
// newer engine (unknown fields of this version's message type).
func runPluginFields(raw []byte) (kind string, programDir string, err error) {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return "", "", protowire.ParseError(n)
		}
		raw = raw[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, raw)
			if n < 0 {
				return "", "", protowire.ParseError(n)
			}
			raw = raw[n:]
			continue
		}
		value, n := protowire.ConsumeBytes(raw)
		if n < 0 {
			return "", "", protowire.ParseError(n)
		}
		raw = raw[n:]
		switch num {
		case 5: // info: ProgramInfo
			for info := value; len(info) > 0; {
				inum, ityp, m := protowire.ConsumeTag(info)
				if m < 0 {
					return "", "", protowire.ParseError(m)
				}
				info = info[m:]
				if inum == 2 && ityp == protowire.BytesType {
					dir, k := protowire.ConsumeBytes(info)
					if k < 0 {
						return "", "", protowire.ParseError(k)
					}
					programDir = string(dir)
					info = info[k:]
					continue
				}
				m = protowire.ConsumeFieldValue(inum, ityp, info)
				if m < 0 {
					return "", "", protowire.ParseError(m)
				}
				info = info[m:]
			}
		case 6: // kind
			kind = string(value)
		}
	}
	return kind, programDir, nil
}

func (host *nodeLanguageHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	kind, dir, err := runPluginFields(req.ProtoReflect().GetUnknown())
	if err != nil {
		return fmt.Errorf("RunPlugin: cannot read the request: %w", err)
	}
	if dir == "" {
		dir = req.GetProgram() // engines before ProgramInfo sent the directory here
	}
	if kind != "" && kind != "analyzer" {
		return fmt.Errorf("RunPlugin: this language host (v3.68.0 with zkmigrate's RunPlugin) runs "+
			"policy packs only, not %q plugins", kind)
	}
	if dir == "" {
		return errors.New("RunPlugin: the request names no plugin directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "PulumiPolicy.yaml")); err != nil {
		return fmt.Errorf("RunPlugin: %s is not a policy pack: %w", dir, err)
	}

	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("RunPlugin: node is not on PATH: %w", err)
	}
	// The runner comes from the pack's own @pulumi/pulumi, as the old pulumi-analyzer-policy
	// script resolved it: from the pack directory.
	resolve := exec.Command(node, "-e", "process.stdout.write(require.resolve('@pulumi/pulumi/cmd/run-policy-pack'))")
	resolve.Dir = dir
	out, err := resolve.Output()
	if err != nil {
		return fmt.Errorf("RunPlugin: @pulumi/pulumi/cmd/run-policy-pack cannot be resolved from %s "+
			"(run npm install there): %w", dir, err)
	}
	runner := strings.TrimSpace(string(out))

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()

	// args: the engine address the CLI passes, then the pack directory (run-policy-pack drops the
	// first and runs the second).
	args := append([]string{runner}, req.GetArgs()...)
	args = append(args, dir)
	cmd := exec.CommandContext(server.Context(), node, args...)
	cmd.Dir = dir
	cmd.Env = req.GetEnv()
	if len(cmd.Env) == 0 {
		cmd.Env = os.Environ()
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	code := int32(0)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return fmt.Errorf("RunPlugin: could not run %s: %w", node, err)
		}
		code = -1
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Exited() {
			code = int32(status.ExitStatus())
		}
	}
	if err := closer.Close(); err != nil {
		return err
	}
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}
