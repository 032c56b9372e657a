/**
 * Reads and writes SentencePiece's `tokenizer.model` (a `sentencepiece.ModelProto` protobuf).
 *
 * The tokenizer itself runs in the SentencePiece library; this module only gives the project
 * what that library's JS build does not expose: the piece table (its size decides where
 * ChatGLM3's special tokens start, and piece types say which ids are byte-fallback pieces), and
 * a way for the demo-model maker to write a model file of its own. The schema is the subset of
 * sentencepiece_model.proto that the project reads or writes, with the upstream field numbers;
 * fields not listed here are skipped on read.
 */
import protobuf from 'protobufjs';

export enum PieceType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export enum ModelType {
  UNIGRAM = 1,
  BPE = 2,
  WORD = 3,
  CHAR = 4,
}

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface TrainerSpec {
  modelType?: ModelType;
  vocabSize?: number;
  splitDigits?: boolean;
  byteFallback?: boolean;
  splitByWhitespace?: boolean;
  splitByUnicodeScript?: boolean;
  splitByNumber?: boolean;
  treatWhitespaceAsSuffix?: boolean;
  allowWhitespaceOnlyPieces?: boolean;
  maxSentencepieceLength?: number;
  unkId?: number;
  bosId?: number;
  eosId?: number;
  padId?: number;
  unkPiece?: string;
  bosPiece?: string;
  eosPiece?: string;
  padPiece?: string;
}

export interface NormalizerSpec {
  name?: string;
  precompiledCharsmap?: Uint8Array;
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  escapeWhitespaces?: boolean;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
}

const root = protobuf.Root.fromJSON({
  nested: {
    sentencepiece: {
      nested: {
        TrainerSpec: {
          fields: {
            modelType: { type: 'int32', id: 3 },
            vocabSize: { type: 'int32', id: 4 },
            maxSentencepieceLength: { type: 'int32', id: 20 },
            splitByUnicodeScript: { type: 'bool', id: 21 },
            splitByWhitespace: { type: 'bool', id: 22 },
            splitByNumber: { type: 'bool', id: 23 },
            treatWhitespaceAsSuffix: { type: 'bool', id: 24 },
            splitDigits: { type: 'bool', id: 25 },
            allowWhitespaceOnlyPieces: { type: 'bool', id: 26 },
            byteFallback: { type: 'bool', id: 35 },
            unkId: { type: 'int32', id: 40 },
            bosId: { type: 'int32', id: 41 },
            eosId: { type: 'int32', id: 42 },
            padId: { type: 'int32', id: 43 },
            unkPiece: { type: 'string', id: 45 },
            bosPiece: { type: 'string', id: 46 },
            eosPiece: { type: 'string', id: 47 },
            padPiece: { type: 'string', id: 48 },
          },
        },
        NormalizerSpec: {
          fields: {
            name: { type: 'string', id: 1 },
            precompiledCharsmap: { type: 'bytes', id: 2 },
            addDummyPrefix: { type: 'bool', id: 3 },
            removeExtraWhitespaces: { type: 'bool', id: 4 },
            escapeWhitespaces: { type: 'bool', id: 5 },
          },
        },
        ModelProto: {
          fields: {
            pieces: { rule: 'repeated', type: 'SentencePiece', id: 1 },
            trainerSpec: { type: 'TrainerSpec', id: 2 },
            normalizerSpec: { type: 'NormalizerSpec', id: 3 },
          },
          nested: {
            SentencePiece: {
              fields: {
                piece: { type: 'string', id: 1 },
                score: { type: 'float', id: 2 },
                type: { type: 'int32', id: 3 },
              },
            },
          },
        },
      },
    },
  },
});

const ModelProto = root.lookupType('sentencepiece.ModelProto');

export class SentencePieceModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SentencePieceModelError';
  }
}

/** Proto2 defaults of the fields this project reads, applied where a file leaves them out. */
const TRAINER_DEFAULTS: Required<Pick<TrainerSpec, 'modelType' | 'unkId' | 'bosId' | 'eosId' | 'padId'>> = {
  modelType: ModelType.UNIGRAM,
  unkId: 0,
  bosId: 1,
  eosId: 2,
  padId: -1,
};

export function decodeSentencePieceModel(bytes: Uint8Array): SentencePieceModel {
  let msg: Record<string, unknown>;
  try {
    msg = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false, longs: Number }) as Record<string, unknown>;
  } catch (err) {
    throw new SentencePieceModelError(`not a SentencePiece model (${(err as Error).message})`);
  }
  const rawPieces = (msg.pieces as Array<Partial<SentencePiece>> | undefined) ?? [];
  if (rawPieces.length === 0) throw new SentencePieceModelError('not a SentencePiece model (no pieces)');
  const pieces = rawPieces.map((p) => ({
    piece: p.piece ?? '',
    score: p.score ?? 0,
    type: (p.type ?? PieceType.NORMAL) as PieceType,
  }));
  return {
    pieces,
    trainerSpec: { ...TRAINER_DEFAULTS, ...((msg.trainerSpec as TrainerSpec | undefined) ?? {}) },
    normalizerSpec: (msg.normalizerSpec as NormalizerSpec | undefined) ?? {},
  };
}

export function encodeSentencePieceModel(model: SentencePieceModel): Uint8Array {
  const message = ModelProto.fromObject({
    pieces: model.pieces.map((p) => ({ piece: p.piece, score: p.score, type: p.type })),
    trainerSpec: model.trainerSpec,
    normalizerSpec: model.normalizerSpec,
  });
  return ModelProto.encode(message).finish();
}
