import { expect } from 'vitest';
import { DeimError } from '../../dist/index.js';

/** The DeimError that a promise rejects with, or an async iterable throws while it is read. */
export async function rejection(p: AsyncIterable<unknown> | Promise<unknown>): Promise<DeimError> {
  try {
    if (Symbol.asyncIterator in Object(p)) for await (const _ of p as AsyncIterable<unknown>) void _;
    else await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DeimError);
    return e as DeimError;
  }
  throw new Error('expected a rejection');
}
