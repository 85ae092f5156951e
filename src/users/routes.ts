import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { answerOnce } from '../http/write-path.js'
import { IdempotencyHeaders, PageQuery, bodyErrors, errorResponses } from '../schemas.js'
import { NewUser, User, UserIdParams, UserPage } from './schemas.js'

const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users } = app
  // POST /users/ is the same route; only /users is documented.
  for (const url of ['/users', '/users/']) {
    app.post(url, {
      schema: {
        hide: url === '/users/',
        tags: ['users'],
        headers: IdempotencyHeaders,
        summary: 'Create a user',
        description: 'Creates a user with 0 credits and an empty points ledger. The first user of an empty database gets id 1. An email already taken, in any letter case, is refused (EMAIL_TAKEN).',
        body: NewUser,
        response: {
          201: User,
          ...errorResponses([...bodyErrors, 409], { 400: ['INVALID_REQUEST', 'INVALID_JSON', 'EMPTY_BODY'], 409: ['EMAIL_TAKEN'] })
        }
      }
    }, async (request, reply) => await answerOnce(request, reply, 201, users.create(request.body.email, request.body.name)))
  }

  app.get('/users/:userId', {
    schema: {
      tags: ['users'],
      summary: 'One user',
      description: 'The user with their current credit balance. An unknown id is 404 USER_NOT_FOUND.',
      params: UserIdParams,
      response: { 200: User, ...errorResponses([400, 404], { 404: ['USER_NOT_FOUND'] }) }
    }
  }, async (request) => await users.get(request.params.userId))

  app.get('/users', {
    schema: {
      tags: ['users'],
      summary: 'All users, newest first',
      description: 'Paginated: pass the previous page\'s next_cursor as cursor; limit 1 to 500 (50).',
      querystring: PageQuery,
      response: { 200: UserPage, ...errorResponses([400]) }
    }
  }, async (request) => await users.list(request.query))
}

export default usersRoutes
