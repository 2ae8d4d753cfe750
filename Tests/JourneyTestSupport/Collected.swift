import Synchronization

/// A list that concurrent tasks and callbacks append to: what each saw, in the order they appended.
/// Shared by the test targets (it is no product of the package).
public final class Collected<Element: Sendable>: Sendable {
    private let storage = Mutex<[Element]>([])

    /// An empty list.
    public init() {}

    /// Appends `element`.
    public func append(_ element: Element) { storage.withLock { $0.append(element) } }

    /// Everything appended so far.
    public var elements: [Element] { storage.withLock { $0 } }
}
