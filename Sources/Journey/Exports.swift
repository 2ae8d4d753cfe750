// The vocabulary of Journey's public API comes from two modules beneath it: the domain
// (JourneyCore: StageID, RuleSet, Evaluation, Pin …) and the storage seam (JourneyStorage:
// RecordedTransition, StorageError, BatchRun …). They are re-exported so that `import Journey` is
// the one import a host or the command line needs, as Hummingbird re-exports the HummingbirdCore
// types its API uses (`Sources/Hummingbird/Exports.swift`). A plain `public import` would let
// those types appear in Journey's signatures but leave every caller to import both modules too.
//
// The SQLite store (and GRDB beneath it) is imported `internal` wherever Journey uses it: no
// GRDB or SQLite type can appear in a public signature of this module.
@_exported import JourneyCore
@_exported import JourneyStorage
