"""age-vcop: does learning the order of one person's photos make a face-age regressor better?"""
