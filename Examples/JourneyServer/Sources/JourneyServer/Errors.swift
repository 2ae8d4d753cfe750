import Hummingbird
import Journey
import JourneyCore
import JourneySQLite

/// Turns the service's typed refusals into status codes and a JSON body `{"error": "..."}`,
/// with the stages skipped (409) or the criteria unmet (422) alongside.
struct JourneyErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as JourneyError {
            if case .store(let store) = error, !store.isClientError {
                context.logger.error("journey request failed", metadata: ["error": "\(error)"])
            }
            return try ErrorJSON(error).response(from: request, context: context)
        } catch let error as HTTPError {
            // Hummingbird's own refusals (bad id, bad body, no route), in the same shape.
            return try ErrorJSON(status: error.status, message: error.body ?? error.status.reasonPhrase)
                .response(from: request, context: context)
        }
    }
}

/// The body of every error answer.
struct ErrorJSON: Encodable {
    let status: HTTPResponse.Status
    let error: String
    var skipped: [String]?
    var unmet: [CheckJSON]?
    var pin: String?

    enum CodingKeys: String, CodingKey { case error, skipped, unmet, pin }

    init(status: HTTPResponse.Status, message: String) {
        self.status = status
        self.error = message
    }

    init(_ error: JourneyError) {
        switch error {
        case .store(.unknownUser):
            self.init(status: .notFound, message: error.description)
        case .store(.conflictRetriesExhausted):
            self.init(status: .conflict, message: error.description)
        case .refused(_, .skipNotDeclared(_, _, let skipped)):
            self.init(status: .conflict, message: error.description)
            self.skipped = skipped.map(\.rawValue)
        case .refused(_, .criteriaNotMet(_, _, let unmet)):
            self.init(status: .unprocessableContent, message: error.description)
            self.unmet = unmet.map(CheckJSON.init)
        case .refused(_, .backwardNotDeclared), .refused(_, .noEdge):
            self.init(status: .conflict, message: error.description)
        case .refused(_, .unknownTargetStage):
            self.init(status: .badRequest, message: error.description)
        case .refused(_, .unknownStage):
            self.init(status: .unprocessableContent, message: error.description)
        case .pinned(_, let stage, _):
            self.init(status: .conflict, message: error.description)
            self.pin = stage
        case .refused(_, .invalidRules), .rules, .rulesUnreadable, .store:
            self.init(status: .internalServerError, message: error.description)
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try context.responseEncoder.encode(self, from: request, context: context)
        response.status = status
        return response
    }
}

extension StoreError {
    /// Whether the request, not the server, is at fault.
    var isClientError: Bool {
        switch self {
        case .unknownUser, .conflictRetriesExhausted: true
        default: false
        }
    }
}
