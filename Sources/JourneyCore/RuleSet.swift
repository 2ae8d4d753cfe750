public import Foundation

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

    /// A rule set as ``RuleSetLoader`` builds it, unchecked. Outside the loader only the rules
    /// compiled into the binary use it (`embed-rules` writes a set the loader already validated).
    package init(version: String, source: String, stages: [Stage], edges: [Edge], aliases: [String: StageID], cacheTTL: TimeInterval?) {
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

    let positions: [StageID: Int]

    /// The stage every user starts in.
    public var initialStage: StageID { stages[0].id }

    /// The stage with id `id`, or nil when the rules have no such stage (aliases are not resolved here).
    public func stage(_ id: StageID) -> Stage? {
        positions[id].map { stages[$0] }
    }

    /// The zero-based position of stage `id` (`J1_` is 0), or nil when the rules have no such stage.
    public func position(of id: StageID) -> Int? { positions[id] }

    /// The stage a stored value means: the first stage when it was never evaluated (see
    /// ``isNeverEvaluated(_:)``), itself when it is a stage, its alias otherwise.
    ///
    /// - throws: ``TransitionRefusal/unknownStage(value:rulesSource:)`` for anything else.
    public func resolve(stored value: String) throws(TransitionRefusal) -> StageID {
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

/// Where a stored stage value sorts in journey order (see ``RuleSet/order(of:)``).
public struct StageOrder: Comparable, Hashable, Sendable {
    /// The stage's position; one past the last stage for a value the rules do not know.
    let position: Int
    /// An alias sorts just after the stage it means.
    let isAlias: Bool
    let text: String

    /// By position, a stage before its aliases, then by ``StageID`` order (`J10_X` after `J9_X` among unknown values too).
    public static func < (lhs: StageOrder, rhs: StageOrder) -> Bool {
        if (lhs.position, lhs.isAlias ? 1 : 0) != (rhs.position, rhs.isAlias ? 1 : 0) {
            return (lhs.position, lhs.isAlias ? 1 : 0) < (rhs.position, rhs.isAlias ? 1 : 0)
        }
        return StageID(lhs.text) < StageID(rhs.text)
    }
}

extension RuleSet {
    /// The journey-order key of a stored value: the rules' stages by position (J10 after J9, never
    /// by text), an alias just after its stage, then values the rules do not know (by their `J<n>_`
    /// number where they have one, then by text).
    ///
    /// ```swift
    /// let sorted = stored.sorted { rules.order(of: $0) < rules.order(of: $1) }
    /// ```
    public func order(of stored: String) -> StageOrder {
        if let position = positions[StageID(stored)] { return StageOrder(position: position, isAlias: false, text: stored) }
        if let alias = aliases[stored], let position = positions[alias] { return StageOrder(position: position, isAlias: true, text: stored) }
        if Self.isNeverEvaluated(stored) { return StageOrder(position: 0, isAlias: true, text: stored) }
        return StageOrder(position: stages.count, isAlias: false, text: stored)
    }

    /// Whether a stored value is a stage of the rules, one of their aliases, or "never evaluated"
    /// (``isNeverEvaluated(_:)``): whether ``resolve(stored:)`` succeeds.
    public func knows(stored: String) -> Bool {
        positions[StageID(stored)] != nil || aliases[stored] != nil || Self.isNeverEvaluated(stored)
    }
}
