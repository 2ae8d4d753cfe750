enum _PlaceholderJourney {}
