import JourneyCore
import JourneyStorage

/// Everything the service refuses or fails at: the rules, the store, a refusal for one user, a pin,
/// and a batch stopped on request.
///
/// Messages say what is wrong, naming the user, stage or file; they give no command-line or HTTP
/// advice. Each front end maps the kind (and `StorageError/category`) to its own exit or HTTP
/// status and adds its own advice.
public enum JourneyError: Error, Sendable, CustomStringConvertible {
    /// The rule set cannot be used: a malformed file or adopted text, or a file that cannot be read.
    case rules(RulesError)
    /// The store refused or failed (missing database, not migrated, unknown user, busy, …).
    case store(StorageError)
    /// The rules refuse something about this user: an unknown stored stage, a skip, unmet criteria.
    case refused(user: Int64, TransitionRefusal)
    /// An explicit move was asked for a user an operator pinned in `stage`, for `reason`.
    case pinned(user: Int64, stage: String, reason: String)
    /// A batch stopped before its end because its host asked (`BatchOptions/stopRequested`), for
    /// `reason` (`SIGTERM`); what it committed stays.
    case stopped(reason: String)

    /// One sentence: the rules' or the store's message, prefixed with the user where there is one.
    public var description: String {
        switch self {
        case .rules(let error): error.description
        case .store(let error): error.description
        case let .refused(user, error): "User \(user): \(error.description)"
        case let .pinned(user, stage, reason): "User \(user) is pinned in \(stage) (\(reason.printable)); no move is made while the pin holds."
        case let .stopped(reason):
            "The batch stopped on \(reason.printable) before its end; the moves it committed stay, and the next run moves whoever is left."
        }
    }
}
