enum _PlaceholderJourneyStore {}
