import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ModelType,
  PieceType,
  SentencePieceModelError,
  decodeSentencePieceModel,
  encodeSentencePieceModel,
} from '../../../src/tokenizer/sentencepiece-model.js';
import { GOLDEN_TOKENIZER_DIR } from '../../helpers/paths.js';
import { readJson } from '../../helpers/json.js';

const bytes = readFileSync(join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model'));
const expected = readJson<{ sp_vocab_size: number; encode: Array<{ ids: number[]; pieces: string[] }> }>(join(GOLDEN_TOKENIZER_DIR, 'expected.json'));

test('reads the piece table and specs of the golden tokenizer', () => {
  const m = decodeSentencePieceModel(bytes);
  assert.equal(m.pieces.length, expected.sp_vocab_size);
  assert.equal(m.trainerSpec.modelType, ModelType.BPE);
  assert.equal(m.trainerSpec.byteFallback, true);
  assert.equal(m.trainerSpec.splitDigits, true);
  assert.deepEqual([m.trainerSpec.unkId, m.trainerSpec.bosId, m.trainerSpec.eosId], [0, 1, 2]);
  assert.equal(m.normalizerSpec.name, 'identity');
  assert.equal(m.pieces[0]!.type, PieceType.UNKNOWN);
  assert.equal(m.pieces.filter((p) => p.type === PieceType.BYTE).length, 256);
  // The pieces the reference tokenizer reported for the first encode case sit at the ids it gave.
  const first = expected.encode[0]!;
  first.ids.forEach((id: number, i: number) => assert.equal(m.pieces[id]!.piece, first.pieces[i]));
});

test('write then read gives the same model', () => {
  const m = decodeSentencePieceModel(bytes);
  const again = decodeSentencePieceModel(encodeSentencePieceModel(m));
  assert.deepEqual(again.pieces, m.pieces);
  assert.deepEqual(again.trainerSpec, m.trainerSpec);
});

test('garbage is refused with a clear error', () => {
  for (const junk of [new Uint8Array(0), Buffer.from('not a model at all'), Buffer.from([0xff, 0xff, 0xff, 0xff])]) {
    assert.throws(() => decodeSentencePieceModel(junk), SentencePieceModelError);
  }
});
