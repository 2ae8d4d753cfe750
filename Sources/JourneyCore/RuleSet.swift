import Foundation

/// A validated rule set: the ordered stages, every edge between them, aliases and the cache TTL.
///
/// Build one with ``RuleSetLoader/load(yaml:source:)``; a `RuleSet` that exists is well formed.
public struct RuleSet: Hashable, Sendable {
    /// The `version` string every recorded transition carries.
    public let version: String
    /// Where the rules came from (a file name), used in messages.
    public let source: String
    /// The stages in order, J1 first.
    public let stages: [Stage]
    /// Declared edges in file order, then the implicit `next` edges in stage order.
    public let edges: [Edge]
    /// Legacy stored values and the stage each one means.
    public let aliases: [String: StageID]
    /// How long an evaluation may be cached, when the rules say.
    public let cacheTTL: TimeInterval?

    init(version: String, source: String, stages: [Stage], edges: [Edge], aliases: [String: StageID], cacheTTL: TimeInterval?) {
        self.version = version
        self.source = source
        self.stages = stages
        self.edges = edges
        self.aliases = aliases
        self.cacheTTL = cacheTTL
        var index: [StageID: Int] = [:]
        for stage in stages { index[stage.id] = stage.position }
        self.positions = index
    }

    private let positions: [StageID: Int]

    /// The stage every user starts in.
    public var initialStage: StageID { stages[0].id }

    public func stage(_ id: StageID) -> Stage? {
        positions[id].map { stages[$0] }
    }

    public func position(of id: StageID) -> Int? { positions[id] }

    /// The stage a stored value means: the first stage when it was never evaluated (see
    /// ``isNeverEvaluated(_:)``), itself when it is a stage, its alias otherwise.
    ///
    /// - throws: ``JourneyCoreError/unknownStage(value:rulesSource:)`` for anything else.
    public func resolve(stored value: String) throws(JourneyCoreError) -> StageID {
        if Self.isNeverEvaluated(value) { return initialStage }
        let id = StageID(value)
        if positions[id] != nil { return id }
        if let alias = aliases[value] { return alias }
        throw .unknownStage(value: value, rulesSource: "\(source) (version \(version))")
    }

    /// Whether a stored stage value means "never evaluated": empty (a NULL column reads as
    /// empty) or nothing but whitespace. Such a user is in the first stage, with no history.
    /// A value with any other text, padded or not, names a stage or is an unknown stage.
    public static func isNeverEvaluated(_ stored: String) -> Bool {
        stored.allSatisfy(\.isWhitespace)
    }

    /// The edges out of `stage` in the order evaluation tries them: declared first, then `next`.
    public func edges(from stage: StageID) -> [Edge] {
        edges.filter { $0.from == stage }
    }

    /// The implicit edge from `stage` to the stage after it, if the rules keep one.
    public func nextEdge(from stage: StageID) -> Edge? {
        edges.first { $0.from == stage && !$0.isDeclared }
    }
}
