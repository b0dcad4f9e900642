// Public API of data/: the synthetic data engine (phantoms, lesions, reports with exact spans) and
// the dataset format (manifest.jsonl) with its checker and importers.
export { synthStudy, splitOf, studyId, studyDifficulty, findSlab, loadRealBackground, type SynthOptions, type SynthStudy, type SynthAnomaly, type Background, type Difficulty } from './synth.ts';
export { buildPhantom, type Phantom, type PhantomOptions, type PhantomModifiers } from './phantom.ts';
export { insertLesion, loadLesionKinds, type LesionKind, type InsertedLesion, type Canvas3 } from './lesions.ts';
export { describePlace, OrganBoxes, type Place, type PlaceHints } from './location.ts';
export { writeReport, type Span, type Finding, type GeneratedReport } from './report.ts';
export { writeStudy, writeManifest, readRecord, studyPaths, checkOrWriteOptions, type ManifestStudy, type ManifestAnomaly } from './dataset.ts';
export { writePreviews, drawText, drawAxial, newCanvas, encodePng } from './preview.ts';
export { checkDataset } from './check.ts';
export { importStudy, importRexGrounding, parseNifti, type FindingsFile, type ImportOptions } from './importers.ts';
export { datasetStats, formatStats, lesionContrast, formatContrast, type DatasetStats, type KindContrast } from './stats.ts';
export { lesionCnr, localContrast, enforceContrast, loadVisibilityRule, requiredCnr, maskVoxelBox, type LocalContrast, type VisibilityRule } from './visibility.ts';
export { readLidcCatalog, lidcSplitOf, loadLidcConfig, noduleDescriptor, renderNoduleSentence, type LidcNodule, type LidcSplit } from './lidc.ts';
export { importLidc, loadLungBackground, prepareNodule, findLanding, pasteNodule, transplantStudy, lidcReport, type LidcImportOptions, type LungBackground, type PreparedNodule } from './transplant.ts';
