"""Runs a command on a pseudo-terminal and answers its prompts, for tests of terminal input.

Usage: tty-driver.py PROMPT ANSWER [PROMPT ANSWER ...] -- COMMAND ARGS...
Prints everything the terminal showed (what the command wrote and what the terminal echoed),
and exits with the command's exit code.
"""
import os, pty, select, sys, time

split = sys.argv.index('--')
pairs = sys.argv[1:split]
command = sys.argv[split + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)
shown = b''

def read(until=None, timeout=10.0):
    global shown
    end = time.time() + timeout
    while time.time() < end and (until is None or until not in shown):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            if until is None:
                break
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk

for prompt, answer in zip(pairs[0::2], pairs[1::2]):
    read(prompt.encode())
    os.write(fd, answer.encode() + b'\r')
_, status = os.waitpid(pid, 0)
read()
sys.stdout.write(shown.decode('utf8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
