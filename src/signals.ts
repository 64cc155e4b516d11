/**
 * Stop signals: Ctrl-C (SIGINT) and SIGTERM (docker stop, systemd, Kubernetes, kill) mean the same
 * to a run: the first asks it to stop starting work and keep what it finished (outputs completed
 * and moved into place), the second to quit now. A command with nothing to finish still removes
 * its temporary files before it dies of the signal (cli/main.ts installs that fallback).
 */
import os from 'node:os';

export type StopSignal = 'SIGINT' | 'SIGTERM';
const STOP_SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM'];

/** Calls `handler` on each SIGINT or SIGTERM; returns the function that removes it. */
export function onStopSignals(handler: (signal: StopSignal) => void): () => void {
  const listeners = STOP_SIGNALS.map((signal) => [signal, () => handler(signal)] as const);
  for (const [signal, listener] of listeners) process.on(signal, listener);
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}

/** How a user names the signal in a message: "Ctrl-C" or "SIGTERM". */
export function signalName(signal: StopSignal): string {
  return signal === 'SIGINT' ? 'Ctrl-C' : signal;
}

/** The exit status of a run stopped by `signal`, as a shell reports it (130 for SIGINT, 143 for SIGTERM). */
export function stoppedStatus(signal: StopSignal): number {
  return 128 + os.constants.signals[signal];
}

/**
 * Dies of `signal` (exit status and wait status as the shell expects). process.exit() is not used:
 * it would tear down worker threads that are inside onnxruntime, which aborts.
 */
export function dieOf(signal: StopSignal): void {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}
