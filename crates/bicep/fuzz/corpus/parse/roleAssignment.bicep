param managedIdentityPrincipalId string
param acrName string
param subscriptionId string
param acrpullRoleId string

resource acr 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: acrName
}

resource roleAssignment 'Microsoft.Authorization/roleAssignments@2020-04-01-preview' = {
  name: guid(acr.id, managedIdentityPrincipalId, 'AcrPull')
  scope: acr
  properties: {
    roleDefinitionId: '/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${acrpullRoleId}'
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}
