// Public API of the report text encoder (model/text): WordPiece tokenizer, corpus reading,
// masked-LM pretraining, the BERT encoder graph and per-character embeddings.
export { basicTokenize, WordPieceTokenizer, trainWordPiece, SPECIAL_TOKENS, type Token, type Word, type WordPieceTrainOptions } from './tokenizer.ts';
export { readCorpus, readReportCsv, readTextCorpus, parseCsv, isHeldOut, splitSentences, REPORT_COLUMNS, type CorpusDocument } from './corpus.ts';
export { packWindows, sentenceSequences, makeMlmBatch, maxPredictionsFor, unigramBaseline, type MlmBatch, type IdSequence } from './mlm.ts';
